// Issue 15: a relay paused for a client that does not read starts a 'stalled' timer. It was cleared
// only on 'drain', so when the client left (or the upstream ended or failed) while paused, the timer
// still fired timeouts.idle later and kept the whole exchange alive until then. Every way out of the
// attempt must clear it. The downstream and undici's controller are the doubles: they are the
// attempt's two process boundaries.
import { expect } from 'chai';
import type { Dispatcher } from 'undici';
import type { Downstream } from '../../src/worker/downstream.js';
import { ClientGoneError, ClientStalledError } from '../../src/worker/exchange-errors.js';
import type { RouteTable, CompiledInstance } from '../../src/worker/route-table.js';
import { Attempt, type AttemptOwner } from '../../src/worker/upstream-attempt.js';

const idleMs = 40;

interface Harness {
  attempt: Attempt;
  controller: Dispatcher.DispatchController;
  aborts: Error[];
  resumes: () => number;
  drain(): void;
}

function harness(): Harness {
  const drainListeners: (() => void)[] = [];
  const down = { write: () => false, onceDrain: (listener: () => void) => drainListeners.push(listener) } as unknown as Downstream;
  const owner = {
    down,
    routeTable: { snapshot: { timeouts: { idleMs }, streamKeepaliveMs: undefined } } as unknown as RouteTable,
    clientGone: false,
    onResponseHead: () => undefined,
    onHeldComplete: () => undefined,
    onEnd: () => undefined,
    onAttemptError: () => undefined,
  } satisfies AttemptOwner;
  const aborts: Error[] = [];
  let resumes = 0;
  const controller = {
    pause: () => undefined,
    resume: () => void (resumes += 1),
    abort: (err: Error) => void aborts.push(err),
  } as unknown as Dispatcher.DispatchController;
  const attempt = new Attempt(owner, {} as CompiledInstance, false);
  attempt.onRequestStart(controller);
  attempt.relay(false, undefined);
  return { attempt, controller, aborts, resumes: () => resumes, drain: () => drainListeners.splice(0).forEach((listener) => listener()) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the stalled timer of a paused relay', function () {
  it('still aborts a client that stops reading, after timeouts.idle', async function () {
    const h = harness();
    h.attempt.onResponseData(h.controller, Buffer.from('data: x\n\n'));
    await sleep(idleMs * 3);
    expect(h.aborts).to.have.length(1);
    expect(h.aborts[0]).to.be.instanceOf(ClientStalledError);
  });

  it('starts once per pause, however many chunks arrive while paused', async function () {
    const h = harness();
    for (let i = 0; i < 5; i++) h.attempt.onResponseData(h.controller, Buffer.from('data: x\n\n'));
    h.drain();
    expect(h.resumes()).to.equal(1);
    await sleep(idleMs * 3);
    expect(h.aborts).to.deep.equal([]);
  });

  it('is cleared when the client leaves while paused', async function () {
    const h = harness();
    h.attempt.onResponseData(h.controller, Buffer.from('data: x\n\n'));
    h.attempt.abort(new ClientGoneError());
    await sleep(idleMs * 3);
    expect(h.aborts.map((err) => err.constructor)).to.deep.equal([ClientGoneError]);
  });

  it('is cleared when the upstream fails while paused', async function () {
    const h = harness();
    h.attempt.onResponseData(h.controller, Buffer.from('data: x\n\n'));
    h.attempt.onResponseError(h.controller, new Error('upstream reset'));
    await sleep(idleMs * 3);
    expect(h.aborts).to.deep.equal([]);
  });

  it('is cleared when the response ends while paused, and a late drain does not resume it', async function () {
    const h = harness();
    h.attempt.onResponseData(h.controller, Buffer.from('data: x\n\n'));
    h.attempt.onResponseEnd();
    h.drain();
    await sleep(idleMs * 3);
    expect(h.aborts).to.deep.equal([]);
    expect(h.resumes()).to.equal(0);
  });
});
