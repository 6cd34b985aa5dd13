// What the supervisor's start, reload and rebind wait for, and the delay before it replaces a worker
// that died: the integration tests show them through real workers; these pin the edges (a failure of
// another generation, a deadline, the back-off's growth and reset).
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { RestartBackoff } from '../../src/primary/restart-backoff.js';
import { ApplyWaits, ListenWait } from '../../src/primary/supervisor-waits.js';

const address = { host: '127.0.0.1', port: 8443 };

/** Whether `promise` has settled, as seen after the microtasks now queued have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await sleep(0);
  return done;
}

async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as Error).message;
  }
  return 'resolved';
}

describe('supervisor waits', function () {
  it('a listen wait is done once its count of workers listen, not before, and only with an address', async function () {
    const wait = new ListenWait();
    const started = wait.begin(3, 2, 5_000);
    let ready = 1;
    wait.check(() => ready, address);
    ready = 2;
    wait.check(() => ready, undefined);
    expect(await settled(started)).to.equal(false);
    wait.check((generation) => (generation === 3 ? ready : 0), address);
    expect(await started).to.deep.equal(address);
  });

  it("a listen wait fails on its own generation's failure, not another's, and at its deadline", async function () {
    const wait = new ListenWait();
    const started = wait.begin(5, 2, 5_000);
    wait.fail(4, new Error('an old worker'));
    expect(await settled(started)).to.equal(false);
    wait.fail(5, new Error('worker 9 exited before listening'));
    expect(await rejection(started)).to.equal('worker 9 exited before listening');

    const late = wait.begin(6, 1, 50);
    expect(await rejection(late)).to.equal('workers did not listen within 0.05 s');
    const after = wait.begin(7, 1, 5_000);
    wait.fail(6, new Error('the timed-out start again'));
    expect(await settled(after), 'failing a timed-out start again leaves the next one waiting').to.equal(false);
    wait.check(() => 1, address);
    expect(await after).to.deep.equal(address);
  });

  it('an apply wait resolves once the oldest serving worker has the version, or at its deadline with a warning', async function () {
    const waits = new ApplyWaits();
    let resolved = false;
    const applied = waits.wait(7, 5_000, () => expect.fail('no timeout expected')).then(() => {
      resolved = true;
    });
    waits.check(6);
    await sleep(5);
    expect(resolved).to.equal(false);
    waits.check(7);
    await applied;
    expect(resolved).to.equal(true);

    let warned = 0;
    await waits.wait(8, 30, () => (warned += 1));
    expect(warned).to.equal(1);
    waits.check(Number.POSITIVE_INFINITY);
    expect(warned, 'a timed-out wait is gone, not resolved twice').to.equal(1);
  });

  it('the restart delay doubles from 100 ms while workers die young, is capped at 10 s, and resets after one that lived', function () {
    const backoff = new RestartBackoff();
    const young = [0, 0, 0, 0, 0, 0, 0, 0, 0].map(() => backoff.next(500));
    expect(young).to.deep.equal([100, 200, 400, 800, 1_600, 3_200, 6_400, 10_000, 10_000]);
    expect(backoff.next(60_000)).to.equal(0);
    expect(backoff.next(500)).to.equal(100);
    expect(backoff.restarts).to.equal(11);
  });
});
