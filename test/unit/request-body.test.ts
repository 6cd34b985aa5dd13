// Reading a request body whole: the bytes come out as they went in however they were cut, whether or
// not a length was declared and whether or not it was the truth, and the worker's body budget ends
// up holding exactly the body kept (nothing for one refused or broken).
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { createBodyBudget, type BodyBudget } from '../../src/worker/body-budget.js';
import { readAll, type BodyResult } from '../../src/worker/request-body.js';

interface Read {
  source: PassThrough;
  budget: BodyBudget;
  result: Promise<BodyResult>;
}

function read(declaredLength: number, o: { maxBytes?: number; budgetBytes?: number } = {}): Read {
  const source = new PassThrough();
  const budget = createBodyBudget();
  const owner = { bytesIn: 0, declaredLength };
  const limits = { maxBytes: o.maxBytes ?? 1024 * 1024, idleMs: 60_000, budget, budgetBytes: o.budgetBytes ?? 8 * 1024 * 1024 };
  const result = new Promise<BodyResult>((resolve) => readAll(source, limits, owner, resolve));
  return { source, budget, result };
}

/** Bytes 0..n-1 of a pattern no two pieces share by accident. */
function bytes(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7) & 0xff;
  return out;
}

function send(source: PassThrough, body: Buffer, pieceBytes: number, end = true): void {
  for (let at = 0; at < body.length; at += pieceBytes) source.write(body.subarray(at, at + pieceBytes));
  if (end) source.end();
}

describe('request body: read whole', function () {
  // Every byte comes out, and the budget holds exactly the body: with the length declared, with none,
  // and with one the body then outgrew.
  const joined = [
    { name: 'joins many pieces of a declared length into the body', size: 100_000, declared: 100_000, piece: 16_384, seed: 1 },
    { name: 'joins pieces when no length was declared', size: 70_000, declared: -1, piece: 10_000, seed: 2 },
    { name: 'keeps every byte of a body longer than it declared, and counts them all', size: 50_000, declared: 30_000, piece: 7_000, seed: 3 },
  ];
  for (const { name, size, declared, piece, seed } of joined) {
    it(`${name}, and holds exactly its length of the budget`, async function () {
      const body = bytes(size, seed);
      const r = read(declared);
      send(r.source, body, piece);
      const result = (await r.result) as Buffer;
      expect(Buffer.isBuffer(result)).to.equal(true);
      expect(result.equals(body)).to.equal(true);
      expect(r.budget.used).to.equal(body.length);
    });
  }

  it('keeps a body of one piece as it came, without a copy', async function () {
    const body = bytes(500);
    const r = read(body.length);
    r.source.end(body);
    expect(await r.result, 'the very buffer the client sent').to.equal(body);
    expect(r.budget.used).to.equal(500);
  });

  it('gives back the part of the declared length a shorter body did not use', async function () {
    // Past a quarter of the declared length, so the buffer of that length is made and then cut short.
    const body = bytes(300_000, 4);
    const r = read(1_000_000);
    send(r.source, body, 16_000);
    const result = (await r.result) as Buffer;
    expect(result.equals(body)).to.equal(true);
    expect(r.budget.used).to.equal(body.length);
    // Not a view into the buffer made for the declared length (allocators may round a copy up a little).
    expect(result.buffer.byteLength, 'the memory kept is the body, not the declared length').to.be.below(500_000);
  });

  it('refuses a body past max_body_bytes and gives back what it took', async function () {
    const r = read(-1, { maxBytes: 10_000 });
    send(r.source, bytes(12_000), 3_000, false);
    expect(await r.result).to.equal('too_large');
    expect(r.budget.used).to.equal(0);
  });

  it('answers over_budget when the declared length no longer fits the budget, holding nothing after', async function () {
    const r = read(40_000, { budgetBytes: 30_000 });
    // The first piece fits; the buffer for the whole declared length does not.
    send(r.source, bytes(40_000), 10_000, false);
    expect(await r.result).to.equal('over_budget');
    expect(r.budget.used).to.equal(0);
  });

  it('takes from the budget only what a client sent while less than a quarter of its declared length came', async function () {
    // A client that declares max_body_bytes and sends a few bytes must not hold the declared length:
    // a handful of them would leave every other body on the worker refused.
    const r = read(1_000_000);
    send(r.source, bytes(200), 100, false);
    await new Promise((resolve) => setImmediate(resolve));
    expect(r.budget.used, 'the bytes sent, not the declared length').to.equal(200);
    send(r.source, bytes(260_000, 5), 16_000, false);
    await new Promise((resolve) => setImmediate(resolve));
    expect(r.budget.used, 'past a quarter, the buffer of the declared length is made and counted whole').to.equal(1_000_000);
    r.source.destroy();
    expect(await r.result).to.be.instanceOf(Error);
    expect(r.budget.used).to.equal(0);
  });

  it('gives back the whole declared length when the client leaves halfway', async function () {
    const r = read(100_000);
    send(r.source, bytes(50_000), 10_000, false);
    await new Promise((resolve) => setImmediate(resolve));
    expect(r.budget.used, 'the declared length is held while the body comes in').to.equal(100_000);
    r.source.destroy();
    expect(await r.result).to.be.instanceOf(Error);
    expect(r.budget.used).to.equal(0);
  });
});
