// A relayed chunk must not keep a much larger read buffer alive while it waits for a slow client
// (issue 15); an ordinary chunk is passed on without a copy.
import { expect } from 'chai';
import { detachedChunk } from '../../src/worker/detached-chunk.js';

describe('detached chunks', function () {
  it('copies a small view into a large buffer, so the buffer can be collected', function () {
    const read = Buffer.alloc(2 * 1024 * 1024, 0x61);
    const view = read.subarray(1000, 1000 + 16384);
    const chunk = detachedChunk(view);
    expect(chunk.buffer).to.not.equal(read.buffer);
    expect(chunk.buffer.byteLength).to.be.at.most(64 * 1024);
    expect(chunk.equals(view)).to.equal(true);
  });

  it('passes on a chunk of an ordinary socket read, or one that is most of its buffer, untouched', function () {
    const socketRead = Buffer.alloc(64 * 1024);
    expect(detachedChunk(socketRead.subarray(0, 1024))).to.have.property('buffer', socketRead.buffer);
    const large = Buffer.alloc(1024 * 1024);
    expect(detachedChunk(large.subarray(0, 512 * 1024))).to.have.property('buffer', large.buffer);
  });
});
