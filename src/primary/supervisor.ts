// Forks the workers and keeps the wanted number of them serving: hands each the current snapshot
// and health table, replaces one that dies (restart-backoff.ts says when), grows or shrinks the set
// on reload, and moves it to a new listen address by starting a new generation before draining the
// old one (supervisor-waits.ts holds what those steps wait for).
import cluster, { type Worker } from 'node:cluster';
import { dispatchMessage, type HealthTable, type LimitMessage, type PrimaryMessage, type WorkerMessage } from '../shared/ipc.js';
import type { Logger } from '../shared/log.js';
import type { Snapshot } from '../shared/snapshot.js';
import { RestartBackoff } from './restart-backoff.js';
import { ApplyWaits, ListenWait, type BoundAddress } from './supervisor-waits.js';
import { workerExecArgv } from './worker-flags.js';

export type { BoundAddress } from './supervisor-waits.js';

export interface WorkerInfo {
  id: number;
  pid: number | undefined;
  startedAt: number;
  listening: boolean;
  retiring: boolean;
  snapshotVersion: number;
}

type HealthReport = Extract<WorkerMessage, { type: 'llm-proxy:outcomes' | 'llm-proxy:cool' | 'llm-proxy:trial' }>;

export interface SupervisorOptions {
  log: Logger;
  healthTable(workerId: number): HealthTable;
  onHealthReport(report: HealthReport, workerId: number): void;
  /** Lease and slot asks of the rate limiter; `reply` answers the worker that asked. */
  onLimitMessage(message: LimitMessage, workerId: number, reply: (message: PrimaryMessage) => void): void;
  onWorkerGone(workerId: number): void;
}

export interface Supervisor {
  /** Resolves with the bound address once `count` workers listen; rejects if one cannot. */
  start(snapshot: Snapshot, count: number): Promise<BoundAddress>;
  /** Sends a snapshot to every worker; resolves once all serving workers applied it (or 5 s passed). */
  broadcast(snapshot: Snapshot): Promise<void>;
  /** Sends every worker its health table. */
  sendHealth(): void;
  /** One message to one worker (nothing if it is gone). */
  sendTo(workerId: number, message: PrimaryMessage): void;
  /** Forks or retires workers until `count` serve. */
  resize(count: number): void;
  /** Starts `count` workers on the snapshot's listen address, then drains the old ones; rejects (old ones untouched) if they cannot listen. */
  rebind(snapshot: Snapshot, count: number): Promise<BoundAddress>;
  /** Asks every worker to drain; resolves when all have exited (killed at the deadline + grace). */
  shutdown(deadlineMs: number): Promise<void>;
  killAll(): void;
  workers(): WorkerInfo[];
  liveIds(): number[];
  readonly restarts: number;
}

interface Member {
  worker: Worker;
  generation: number;
  startedAt: number;
  listening: boolean;
  retiring: boolean;
  appliedVersion: number;
  /** Drain deadline asked of it; kept for a worker told before its message handler existed. */
  drainMs: number | undefined;
}

const applyWaitMs = 5_000;
// A worker that has not listened after this long never will; a reload must not wait on it forever.
const listenWaitMs = 30_000;

export function createSupervisor({ log, healthTable, onHealthReport, onLimitMessage, onWorkerGone }: SupervisorOptions): Supervisor {
  cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS) });
  const members = new Map<number, Member>();
  let snapshot: Snapshot | undefined;
  let generation = 0;
  let stopping = false;
  const backoff = new RestartBackoff();
  let pendingForks = 0;
  const listenWait = new ListenWait();
  const applyWaits = new ApplyWaits();
  let boundAddress: BoundAddress | undefined;
  /**
   * The port a generation's first worker bound when the config says port 0 and every worker binds its
   * own socket (accept-mode.ts): without it each would get a port of its own. The rest of the
   * generation, and every replacement, listens there.
   */
  const generationPorts = new Map<number, number>();
  let pendingFirstListen: { generation: number; forkRest(): void } | undefined;

  const send = (worker: Worker, message: PrimaryMessage) => {
    if (worker.isConnected()) worker.send(message);
  };
  /** The snapshot as a member must see it: with its generation's port where the config says 0. */
  const snapshotFor = (member: Member, current: Snapshot): Snapshot => {
    const port = generationPorts.get(member.generation);
    return port === undefined || current.listen.port !== 0 ? current : { ...current, listen: { ...current.listen, port } };
  };
  const serving = () => [...members.values()].filter((member) => !member.retiring);

  const checkApplied = () => applyWaits.check(Math.min(...serving().map((member) => member.appliedVersion)));
  const listeningIn = (wanted: number) => serving().filter((member) => member.generation === wanted && member.listening).length;
  const checkListening = () => listenWait.check(listeningIn, boundAddress);

  // A worker forked a moment ago may not listen for messages yet and would miss this; its hello
  // then gets the shutdown instead of a snapshot.
  const askToDrain = (member: Member, deadlineMs: number) => {
    member.drainMs = deadlineMs;
    send(member.worker, { type: 'llm-proxy:shutdown', deadlineMs });
  };

  const retire = (member: Member, deadlineMs: number) => {
    if (member.retiring) return;
    member.retiring = true;
    askToDrain(member, deadlineMs);
    const killer = setTimeout(() => member.worker.process.kill('SIGKILL'), deadlineMs + 2_000);
    killer.unref();
    member.worker.once('exit', () => clearTimeout(killer));
  };

  const fork = (memberGeneration: number) => {
    const worker = cluster.fork();
    const member: Member = { worker, generation: memberGeneration, startedAt: Date.now(), listening: false, retiring: false, appliedVersion: 0, drainMs: undefined };
    members.set(worker.id, member);
    const reply = (message: PrimaryMessage) => send(worker, message);
    worker.on('message', (raw: unknown) =>
      dispatchMessage<WorkerMessage>(raw, {
        'llm-proxy:hello': () => {
          if (member.drainMs !== undefined) return send(worker, { type: 'llm-proxy:shutdown', deadlineMs: member.drainMs });
          if (snapshot === undefined) return;
          send(worker, { type: 'llm-proxy:snapshot', snapshot: snapshotFor(member, snapshot) });
          send(worker, { type: 'llm-proxy:health', health: healthTable(worker.id) });
        },
        'llm-proxy:listening': (message) => {
          member.listening = true;
          // The version it started listening with: a newer snapshot may have reached it (and been
          // confirmed) while its listen was on the way, so this one can be the older.
          member.appliedVersion = Math.max(member.appliedVersion, message.version);
          if (member.generation === generation) boundAddress = message.address;
          if (snapshot?.listen.reusePort === true && !generationPorts.has(member.generation)) generationPorts.set(member.generation, message.address.port);
          const first = pendingFirstListen;
          if (first !== undefined && first.generation === member.generation) {
            pendingFirstListen = undefined;
            first.forkRest();
          }
          log.debug({ worker: worker.id, pid: worker.process.pid }, 'worker listening');
          checkListening();
          checkApplied();
        },
        'llm-proxy:snapshot-applied': (message) => {
          member.appliedVersion = Math.max(member.appliedVersion, message.version);
          checkApplied();
        },
        'llm-proxy:fatal': (message) => {
          log.error({ worker: worker.id, reason: message.message }, 'worker failed');
          listenWait.fail(member.generation, new Error(message.message));
        },
        'llm-proxy:outcomes': (message) => onHealthReport(message, worker.id),
        'llm-proxy:cool': (message) => onHealthReport(message, worker.id),
        'llm-proxy:trial': (message) => onHealthReport(message, worker.id),
        'llm-proxy:lease': (message) => onLimitMessage(message, worker.id, reply),
        'llm-proxy:lease-return': (message) => onLimitMessage(message, worker.id, reply),
        'llm-proxy:slot': (message) => onLimitMessage(message, worker.id, reply),
        'llm-proxy:slot-return': (message) => onLimitMessage(message, worker.id, reply),
      }),
    );
    // A fork that cannot spawn (EACCES on the node binary, EAGAIN at a process limit) or an IPC
    // channel that breaks is an 'error' on the Worker: without a listener it would kill the primary.
    worker.on('error', (err: Error & { code?: string }) => {
      log.error({ worker: worker.id, reason: err.code ?? err.message }, 'worker process error');
      if (worker.process.pid !== undefined) return;
      members.delete(worker.id);
      listenWait.fail(member.generation, new Error(`worker ${worker.id} could not be started: ${err.code ?? err.message}`));
    });
    worker.once('exit', (code, signal) => {
      members.delete(worker.id);
      onWorkerGone(worker.id);
      checkApplied();
      // A worker of a generation still being started died before listening: that start failed
      // (replacing it could loop forever, and a reload waiting on it would block every later one).
      if (!member.listening) listenWait.fail(member.generation, new Error(`worker ${worker.id} exited before listening (${signal ?? `exit code ${code}`})`));
      if (stopping || member.retiring) return;
      const delay = backoff.next(Date.now() - member.startedAt);
      // `pid` stays the primary's own, as on every line it logs.
      log.error({ worker: worker.id, workerPid: worker.process.pid, exitCode: code, signal, restartInMs: delay }, 'worker exited unexpectedly, replacing it');
      pendingForks += 1;
      setTimeout(() => {
        pendingForks -= 1;
        // A reload may have changed the generation or the count meanwhile; replace into the current one.
        if (!stopping && serving().length + pendingForks < (snapshot?.workers ?? 0)) fork(generation);
      }, delay).unref();
    });
    return member;
  };

  const forkGeneration = (count: number): Promise<BoundAddress> => {
    generation += 1;
    const started = generation;
    const waiting = listenWait.begin(started, count, listenWaitMs);
    const forkRest = (from: number) => {
      for (let i = from; i < count; i++) fork(started);
    };
    if (snapshot?.listen.reusePort === true && snapshot.listen.port === 0) {
      pendingFirstListen = { generation: started, forkRest: () => forkRest(1) };
      fork(started);
    } else {
      forkRest(0);
    }
    return waiting;
  };

  return {
    get restarts() {
      return backoff.restarts;
    },
    start(first, count) {
      snapshot = first;
      return forkGeneration(count);
    },
    broadcast(next) {
      snapshot = next;
      for (const member of members.values()) send(member.worker, { type: 'llm-proxy:snapshot', snapshot: snapshotFor(member, next) });
      const applied = applyWaits.wait(next.version, applyWaitMs, () =>
        log.warn({ configVersion: next.version }, 'not every worker confirmed the new config within 5 s'),
      );
      checkApplied();
      return applied;
    },
    sendTo(workerId, message) {
      const member = members.get(workerId);
      if (member !== undefined) send(member.worker, message);
    },
    sendHealth() {
      for (const member of members.values()) send(member.worker, { type: 'llm-proxy:health', health: healthTable(member.worker.id) });
    },
    resize(count) {
      const live = serving();
      if (live.length < count) {
        log.info({ from: live.length, to: count }, 'adding workers');
        for (let i = live.length; i < count; i++) fork(generation);
      } else if (live.length > count) {
        log.info({ from: live.length, to: count }, 'retiring workers');
        const newestFirst = live.sort((a, b) => b.startedAt - a.startedAt);
        for (const member of newestFirst.slice(0, live.length - count)) retire(member, snapshot?.timeouts.shutdownMs ?? 30_000);
      }
    },
    async rebind(next, count) {
      const previous = snapshot;
      const previousGeneration = generation;
      const old = serving();
      snapshot = next;
      try {
        const address = await forkGeneration(count);
        for (const member of old) retire(member, next.timeouts.shutdownMs);
        for (const member of members.values()) if (member.generation !== generation && !member.retiring) retire(member, next.timeouts.shutdownMs);
        // The old generation drains with the routes it had; only the new one needs the new snapshot.
        return address;
      } catch (err) {
        pendingFirstListen = undefined;
        snapshot = previous;
        for (const member of members.values()) {
          if (member.generation !== generation) continue;
          member.retiring = true;
          member.worker.process.kill('SIGKILL');
        }
        generation = previousGeneration;
        throw err;
      }
    },
    shutdown(deadlineMs) {
      stopping = true;
      const alive = [...members.values()];
      if (alive.length === 0) return Promise.resolve();
      return new Promise((resolve) => {
        let remaining = alive.length;
        const killer = setTimeout(() => {
          for (const member of members.values()) member.worker.process.kill('SIGKILL');
        }, deadlineMs + 2_000);
        for (const member of alive) {
          member.worker.once('exit', () => {
            remaining -= 1;
            if (remaining === 0) {
              clearTimeout(killer);
              resolve();
            }
          });
          askToDrain(member, deadlineMs);
        }
      });
    },
    killAll() {
      stopping = true;
      for (const member of members.values()) member.worker.process.kill('SIGKILL');
    },
    workers() {
      return [...members.values()].map((member) => ({
        id: member.worker.id,
        pid: member.worker.process.pid,
        startedAt: member.startedAt,
        listening: member.listening,
        retiring: member.retiring,
        snapshotVersion: member.appliedVersion,
      }));
    },
    liveIds() {
      return serving().map((member) => member.worker.id);
    },
  };
}
