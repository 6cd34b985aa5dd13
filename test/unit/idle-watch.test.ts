// The one timer that watches every request body being read: a read that hears nothing for its
// idleMs times out (at most one sweep late), one that keeps receiving does not, and removing reads
// in any order never makes the watch lose or mistake one.
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { IdleWatch } from '../../src/worker/request-body.js';

function read(watch: IdleWatch, idleMs: number, fired: string[], name: string) {
  const r = { idleMs, lastSweep: watch.sweeps, slot: -1, onIdle: () => {
    fired.push(name);
    watch.delete(r);
  } };
  watch.add(r);
  return r;
}

describe('request body idle watch', function () {
  it('times out only the reads that heard nothing for idleMs, whatever order others left in', async function () {
    const watch = new IdleWatch();
    const fired: string[] = [];
    const reads = ['a', 'b', 'c', 'd', 'e', 'f'].map((name) => read(watch, 250, fired, name));
    // Removed before their time, from the middle, the end and the start of the list.
    watch.delete(reads[2] as (typeof reads)[number]);
    watch.delete(reads[5] as (typeof reads)[number]);
    watch.delete(reads[0] as (typeof reads)[number]);
    watch.delete(reads[0] as (typeof reads)[number]);
    const started = Date.now();
    const lively = reads[3] as (typeof reads)[number];
    while (Date.now() - started < 600) {
      lively.lastSweep = watch.sweeps;
      await sleep(20);
    }
    expect(fired.sort()).to.deep.equal(['b', 'e']);
    watch.delete(lively);
    await sleep(450);
    expect(fired).to.have.length(2);
  });

  it('never times a read out before its idleMs', async function () {
    const watch = new IdleWatch();
    const fired: string[] = [];
    const started = Date.now();
    read(watch, 300, fired, 'x');
    while (fired.length === 0 && Date.now() - started < 2_000) await sleep(5);
    expect(fired).to.deep.equal(['x']);
    expect(Date.now() - started).to.be.at.least(300);
  });
});
