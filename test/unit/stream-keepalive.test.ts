// Where a `: keep-alive` comment may go in a relayed event stream: only at a line start, and as a
// whole empty event only between events (a blank line inside one would end it early).
import { expect } from 'chai';
import { positionAfter, type SsePosition } from '../../src/worker/stream-keepalive.js';

describe('stream keep-alive position', function () {
  const after = (chunks: string[]) => chunks.reduce<SsePosition>((position, chunk) => positionAfter(Buffer.from(chunk), position), 'event-start');

  it('is between events after a blank line, LF or CRLF, also split across chunks', function () {
    expect(after(['data: a\n\n'])).to.equal('event-start');
    expect(after(['data: a\r\n\r\n'])).to.equal('event-start');
    expect(after(['data: a\n', '\n'])).to.equal('event-start');
    expect(after(['data: a\r\n', '\r\n'])).to.equal('event-start');
    expect(after([])).to.equal('event-start');
  });

  it('is inside an event after a line end that is not a blank line', function () {
    expect(after(['event: x\n'])).to.equal('line-start');
    expect(after(['data: a', '\n'])).to.equal('line-start');
    expect(after(['data: a\r', '\n'])).to.equal('line-start');
  });

  it('is mid-line after bytes that end no line, a lone CR included (it may be half of CRLF)', function () {
    expect(after(['data: {"a":'])).to.equal('mid-line');
    expect(after(['data: a\r'])).to.equal('mid-line');
    expect(after(['data: a\n\n', 'data: b'])).to.equal('mid-line');
  });
});
