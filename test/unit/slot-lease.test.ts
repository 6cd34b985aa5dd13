// The worker's lease of a key's concurrency slots (src/worker/slot-lease.ts), driven as the worker
// drives it: asks go out as IPC messages (captured here), grants come back through onGrant.
import { expect } from 'chai';
import type { WorkerMessage } from '../../src/shared/ipc.js';
import { SlotLease, type SlotAnswer } from '../../src/worker/slot-lease.js';

interface Harness {
  lease: SlotLease;
  sent: WorkerMessage[];
  forgotten: number[];
  /** Answers the latest slot ask. */
  grant(granted: number, unavailableMs?: number): boolean;
  admit(): { answer: SlotAnswer | undefined; held: boolean | undefined };
}

function harness(limit: number): Harness {
  const sent: WorkerMessage[] = [];
  const forgotten: number[] = [];
  let seq = 0;
  const lease = new SlotLease('key-1', limit, (message) => sent.push(message), {
    next: () => ++seq,
    register: () => undefined,
    forget: (asked) => forgotten.push(asked),
  });
  return {
    lease,
    sent,
    forgotten,
    grant(granted, unavailableMs = 0) {
      const ask = [...sent].reverse().find((message) => message.type === 'llm-proxy:slot');
      if (ask?.type !== 'llm-proxy:slot') throw new Error('no ask to answer');
      return lease.onGrant(ask.seq, granted, unavailableMs);
    },
    admit() {
      const result: { answer: SlotAnswer | undefined; held: boolean | undefined } = { answer: undefined, held: undefined };
      lease.admit(Date.now(), (answer, held) => {
        result.answer = answer;
        result.held = held;
      });
      return result;
    },
  };
}

const asks = (sent: WorkerMessage[]) => sent.filter((message) => message.type === 'llm-proxy:slot');
const returns = (sent: WorkerMessage[]) => sent.filter((message) => message.type === 'llm-proxy:slot-return');

describe('worker slot lease (concurrency)', function () {
  it('asks the primary when it holds nothing, then serves the next request from the freed slot without asking', function () {
    const h = harness(10);
    const first = h.admit();
    expect(first.answer).to.equal(undefined);
    expect(asks(h.sent)).to.deep.equal([{ type: 'llm-proxy:slot', seq: 1, id: 'key-1', want: 1 }]);
    expect(h.grant(1)).to.equal(true);
    expect(first).to.deep.equal({ answer: 'granted', held: true });
    h.lease.free();
    // One spare is kept (a hundredth of 10, at least one): nothing goes back, nothing is asked.
    expect(returns(h.sent)).to.have.length(0);
    expect(h.admit()).to.deep.equal({ answer: 'granted', held: true });
    expect(asks(h.sent)).to.have.length(1);
    expect(h.lease.inUse).to.equal(1);
  });

  it('keeps at most its spare allowance and hands the rest back as requests end', function () {
    const h = harness(3);
    const admitted = [h.admit(), h.admit(), h.admit()];
    // The first ask went out for one; those who came meanwhile are asked for when it is answered.
    expect(h.grant(1)).to.equal(true);
    expect(asks(h.sent).at(-1)).to.include({ want: 2 });
    h.grant(2);
    expect(admitted.map((result) => result.answer)).to.deep.equal(['granted', 'granted', 'granted']);
    h.lease.free();
    h.lease.free();
    expect(returns(h.sent)).to.deep.equal([{ type: 'llm-proxy:slot-return', id: 'key-1', amount: 1, recalled: false }]);
    h.lease.free();
    expect(returns(h.sent).at(-1)).to.include({ amount: 1 });
    expect(h.lease.held).to.equal(1);
  });

  it('refuses those waiting when the primary answers short (it recalled spares elsewhere first)', function () {
    const h = harness(2);
    const first = h.admit();
    const second = h.admit();
    h.grant(1);
    h.grant(0);
    expect(first.answer).to.equal('granted');
    expect(second).to.deep.equal({ answer: 'refused', held: false });
  });

  it('hands every spare back on a recall, and answers a recall even with none', function () {
    const h = harness(200);
    const results = [h.admit()];
    h.grant(1);
    results.push(h.admit(), h.admit());
    h.grant(2);
    h.lease.free();
    h.lease.free();
    h.lease.recall();
    expect(returns(h.sent).at(-1)).to.deep.equal({ type: 'llm-proxy:slot-return', id: 'key-1', amount: 2, recalled: true });
    h.lease.recall();
    expect(returns(h.sent).at(-1)).to.deep.equal({ type: 'llm-proxy:slot-return', id: 'key-1', amount: 0, recalled: true });
    expect(h.lease.held).to.equal(1);
  });

  it('returns spares unused for 2 s, counted from when they were freed', function () {
    const h = harness(10);
    h.admit();
    h.grant(1);
    h.lease.free();
    h.lease.returnIdle(Date.now() + 1_000, false);
    expect(returns(h.sent)).to.have.length(0);
    h.lease.returnIdle(Date.now() + 2_100, false);
    expect(returns(h.sent)).to.deep.equal([{ type: 'llm-proxy:slot-return', id: 'key-1', amount: 1, recalled: false }]);
  });

  it('an unavailable store (on_unavailable: reject) refuses at once, then locally until the time given', function () {
    const h = harness(10);
    const first = h.admit();
    h.grant(0, 2_000);
    expect(first).to.deep.equal({ answer: 'unavailable', held: false });
    expect(h.admit().answer).to.equal('unavailable');
    expect(asks(h.sent)).to.have.length(1);
  });

  it('admits those waiting without a slot when the primary does not answer, and forgets the ask', async function () {
    this.timeout(5_000);
    const h = harness(10);
    const waiting = h.admit();
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    expect(waiting).to.deep.equal({ answer: 'granted', held: false });
    expect(h.forgotten).to.deep.equal([1]);
    // The grant that comes late is not this lease's any more: the caller hands it back.
    expect(h.grant(1)).to.equal(false);
    expect(h.lease.held).to.equal(0);
  });

  it('once closed (limits changed, worker draining) it returns every freed slot and lets waiters go', function () {
    const h = harness(10);
    h.admit();
    h.grant(1);
    const waiting = h.admit();
    const ask = asks(h.sent).at(-1);
    expect(ask).to.include({ want: 1 });
    h.lease.returnIdle(Date.now(), true);
    expect(h.grant(1)).to.equal(false);
    expect(waiting).to.deep.equal({ answer: 'granted', held: false });
    h.lease.free();
    expect(returns(h.sent).at(-1)).to.include({ amount: 1, recalled: false });
    expect(h.lease.held).to.equal(0);
  });
});
