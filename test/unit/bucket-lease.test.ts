// The worker's lease of one bucket (bucket-lease.ts) as a state machine: it is a pure class whose only
// way out is the `send` it is given, so the test plays the primary, capturing each message the lease
// sends and answering its asks through onGrant, the way the worker's IPC handler does.
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import type { LimitDimension, WorkerMessage } from '../../src/shared/ipc.js';
import { askTimeoutMs, Lease, type Asks } from '../../src/worker/bucket-lease.js';

type Ask = Extract<WorkerMessage, { type: 'llm-proxy:lease' }>;

/** A lease wired to a message log instead of the primary. */
function leaseOf(dimension: LimitDimension, limit: number) {
  const sent: WorkerMessage[] = [];
  const forgotten: number[] = [];
  let seq = 0;
  const asks: Asks = { next: () => ++seq, register: () => undefined, forget: (asked) => forgotten.push(asked) };
  const lease = new Lease('key-1', dimension, limit, (message) => sent.push(message), asks);
  const asksSent = () => sent.filter((message): message is Ask => message.type === 'llm-proxy:lease');
  const lastAsk = (): Ask => {
    const ask = asksSent().at(-1);
    if (ask === undefined) throw new Error('the lease sent no ask');
    return ask;
  };
  /** Answers the lease's latest ask as the primary would. */
  const grant = (granted: number, level: number, retryAfterMs = 0, estimate = 0) => lease.onGrant(lastAsk().seq, granted, level, retryAfterMs, estimate);
  return { lease, sent, asksSent, lastAsk, grant, forgotten };
}

/** An admission's outcome, once it is called back. */
function admission() {
  const result: { ok?: boolean; taken?: number; calls: number } = { calls: 0 };
  const done = (ok: boolean, taken: number) => {
    result.ok = ok;
    result.taken = taken;
    result.calls += 1;
  };
  return { result, done };
}

describe('bucket lease (worker side of a key bucket)', function () {
  it('an empty lease asks, admits its waiter from the grant, then admits from what is left without asking', function () {
    const { lease, sent, lastAsk, grant } = leaseOf('requests', 600);
    const first = admission();
    lease.admit(Date.now(), first.done);
    expect(first.result.calls, 'waits for the primary').to.equal(0);
    // A hundredth of the limit per ask.
    expect(lastAsk()).to.include({ id: 'key-1', dimension: 'requests', want: 6, debt: 0 });
    expect(grant(6, 594)).to.equal(true);
    expect(first.result).to.include({ ok: true, taken: 1, calls: 1 });
    const before = sent.length;
    for (let i = 0; i < 2; i++) {
      const next = admission();
      lease.admit(Date.now(), next.done);
      expect(next.result).to.include({ ok: true, taken: 1 });
    }
    expect(sent.length, 'admitted from the lease: no IPC').to.equal(before);
    expect(lease.balance).to.equal(3);
  });

  it('asks ahead once the lease runs low, so that no request waits for the answer', function () {
    const { lease, asksSent, grant } = leaseOf('requests', 600);
    lease.admit(Date.now(), admission().done);
    grant(6, 594);
    lease.admit(Date.now(), admission().done);
    lease.admit(Date.now(), admission().done);
    expect(asksSent()).to.have.length(1);
    const low = admission();
    lease.admit(Date.now(), low.done);
    expect(low.result, 'admitted at once').to.include({ ok: true, calls: 1 });
    expect(asksSent(), 'and asked for more meanwhile').to.have.length(2);
    grant(6, 588);
    expect(lease.balance).to.equal(8);
  });

  it('refuses without asking while the primary said the bucket cannot cover a request; a smaller one still asks', function () {
    const { lease, asksSent, lastAsk, grant } = leaseOf('tokens', 1000);
    // 25 prompt tokens and max_tokens 5000: more than the limit, so the whole limit is reserved.
    const big = admission();
    lease.admit(Date.now(), big.done, { prompt: 25, maxOutput: 5000 });
    expect(lastAsk().want).to.equal(1000);
    grant(0, 0, 60_000);
    expect(big.result).to.include({ ok: false, taken: 0 });
    expect(lease.retryAfterMs(Date.now())).to.be.within(59_000, 60_000);

    const again = admission();
    lease.admit(Date.now(), again.done, { prompt: 25, maxOutput: 5000 });
    expect(again.result).to.include({ ok: false, calls: 1 });
    expect(asksSent(), 'refused locally').to.have.length(1);

    const small = admission();
    lease.admit(Date.now(), small.done, { prompt: 10, maxOutput: 40 });
    expect(small.result.calls, 'asks the primary').to.equal(0);
    expect(lastAsk().want).to.equal(50);
    grant(50, 0);
    expect(small.result).to.include({ ok: true, taken: 50 });
  });

  it('serves waiters in turn by what each reserves, and asks again for the ones the grant did not cover', function () {
    const { lease, asksSent, lastAsk, grant } = leaseOf('tokens', 1000);
    const large = admission();
    const small = admission();
    lease.admit(Date.now(), large.done, { prompt: 100, maxOutput: 400 });
    lease.admit(Date.now(), small.done, { prompt: 20, maxOutput: 80 });
    expect(asksSent()).to.have.length(1);
    expect(lastAsk().want).to.equal(500);
    grant(500, 500);
    expect(large.result).to.include({ ok: true, taken: 500 });
    expect(small.result.calls).to.equal(0);
    expect(lastAsk().want).to.equal(100);
    grant(100, 400);
    expect(small.result).to.include({ ok: true, taken: 100 });
  });

  it('requests that waited for the first answer reserve the key’s average that answer brings (learnt on another worker)', function () {
    const { lease, asksSent, lastAsk, grant } = leaseOf('tokens', 5000);
    const waiting = [admission(), admission(), admission()];
    for (const { done } of waiting) lease.admit(Date.now(), done, { prompt: 25, maxOutput: undefined });
    expect(asksSent()).to.have.length(1);
    grant(2500, 2500, 0, 1000);
    expect(waiting.map(({ result }) => result.taken)).to.deep.equal([1000, 1000, undefined]);
    expect(lastAsk().want, 'asks for the rest of what the third needs').to.equal(500);
  });

  it('settles a response that cost more than it reserved: the debt goes to the primary with the next ask, with the new estimate', function () {
    const { lease, lastAsk, grant } = leaseOf('tokens', 1000);
    const first = admission();
    lease.admit(Date.now(), first.done, { prompt: 25, maxOutput: undefined });
    expect(lastAsk().want).to.equal(25);
    grant(25, 975);
    expect(first.result.taken).to.equal(25);
    // Emptied, the lease asked ahead for a batch.
    expect(lastAsk()).to.include({ want: 10, debt: 0 });
    grant(10, 965);
    lease.settle(25, 400);
    expect(lease.balance).to.equal(0);
    // What the key costs is now 400: the lease asks for that much, with the 365 owed beyond it.
    expect(lastAsk()).to.include({ debt: 365, want: 400, estimate: 400 });
    grant(400, 165);
    // The next request without a declared output reserves the key's average.
    const second = admission();
    lease.admit(Date.now(), second.done, { prompt: 25, maxOutput: undefined });
    expect(second.result).to.include({ ok: true, taken: 400 });
  });

  it('settles a response that cost less than it reserved: the rest stays in the lease', function () {
    const { lease, grant } = leaseOf('tokens', 1000);
    const first = admission();
    lease.admit(Date.now(), first.done, { prompt: 25, maxOutput: 975 });
    grant(1000, 0);
    expect(first.result.taken).to.equal(1000);
    lease.settle(1000, 30);
    expect(lease.balance).to.equal(970);
  });

  it('admits its waiters when the primary does not answer in time, and a grant that comes late is not taken', async function () {
    this.timeout(askTimeoutMs + 5_000);
    const { lease, grant, forgotten, lastAsk } = leaseOf('tokens', 1000);
    const waiting = admission();
    lease.admit(Date.now(), waiting.done, { prompt: 25, maxOutput: 100 });
    await sleep(askTimeoutMs + 200);
    expect(waiting.result, 'admitted without a reservation').to.include({ ok: true, taken: 0 });
    // The worker's table of asks out drops it (it used to keep every timed-out ask for good).
    expect(forgotten).to.deep.equal([lastAsk().seq]);
    // The worker hands back a grant its lease does not take.
    expect(grant(125, 875)).to.equal(false);
    expect(lease.balance).to.equal(0);
  });

  it('a closed lease lets its waiters go, does not take a late grant, and hands back what it holds', function () {
    const { lease, sent, grant } = leaseOf('requests', 600);
    lease.admit(Date.now(), admission().done);
    grant(6, 594);
    const waiting = admission();
    // Empty the lease so the next request waits for an ask.
    for (let i = 0; i < 5; i++) lease.admit(Date.now(), admission().done);
    lease.admit(Date.now(), waiting.done);
    expect(waiting.result.calls).to.equal(0);
    lease.closed = true;
    expect(grant(6, 588), 'the grant goes back').to.equal(false);
    expect(waiting.result).to.include({ ok: true, taken: 0 });

    const { lease: held, sent: heldSent, grant: heldGrant } = leaseOf('requests', 600);
    held.admit(Date.now(), admission().done);
    heldGrant(6, 594);
    held.closed = true;
    held.returnIdle(Date.now(), true);
    expect(heldSent.at(-1)).to.deep.equal({ type: 'llm-proxy:lease-return', id: 'key-1', dimension: 'requests', amount: 5 });
    expect(held.balance).to.equal(0);
    expect(sent.filter((message) => message.type === 'llm-proxy:lease-return')).to.have.length(0);
  });

  it('hands back a lease that sat unused for a while', function () {
    const { lease, sent, lastAsk, grant } = leaseOf('tokens', 1000);
    lease.admit(Date.now(), admission().done, { prompt: 25, maxOutput: 75 });
    grant(100, 900);
    grant(10, 890);
    lease.settle(100, 300);
    // The settle asked at once, with the 190 owed; answered, the lease holds what it was granted.
    expect(lastAsk()).to.include({ debt: 190, want: 300 });
    grant(300, 400);
    const now = Date.now();
    lease.returnIdle(now + 500, false);
    expect(sent.at(-1)?.type, 'not idle yet').to.equal('llm-proxy:lease');
    lease.returnIdle(now + 2_500, false);
    expect(sent.at(-1)).to.deep.equal({ type: 'llm-proxy:lease-return', id: 'key-1', dimension: 'tokens', amount: 300 });
  });
});
