// Forks the workers, hands each the current snapshot, notices when all listen, and replaces a worker
// that dies (with growing back-off while it keeps dying young) so one crash costs only its requests.
import cluster, { type Worker } from 'node:cluster';
import { dispatchMessage, type PrimaryMessage, type WorkerMessage } from '../shared/ipc.js';
import type { Logger } from '../shared/log.js';
import type { Snapshot } from '../shared/snapshot.js';
import { workerExecArgv } from './worker-flags.js';

export interface Supervisor {
  /** Resolves with the bound address once every worker listens; rejects if one cannot. */
  start(snapshot: Snapshot, count: number): Promise<{ host: string; port: number }>;
  broadcast(snapshot: Snapshot): void;
  /** Asks every worker to drain; resolves when all have exited (killed at the deadline + grace). */
  shutdown(deadlineMs: number): Promise<void>;
  killAll(): void;
  readonly workerCount: number;
}

const youngDeathMs = 10_000;
const maxBackoffMs = 10_000;

export function createSupervisor(log: Logger): Supervisor {
  cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS) });
  let snapshot: Snapshot | undefined;
  let stopping = false;
  let rapidDeaths = 0;
  const startedAt = new Map<number, number>();
  const listening = new Set<number>();
  let readyWaiter: { resolve: (address: { host: string; port: number }) => void; reject: (err: Error) => void; count: number } | undefined;
  let boundAddress: { host: string; port: number } | undefined;

  const send = (worker: Worker, message: PrimaryMessage) => {
    if (worker.isConnected()) worker.send(message);
  };

  const fork = () => {
    const worker = cluster.fork();
    startedAt.set(worker.id, Date.now());
    worker.on('message', (raw: unknown) =>
      dispatchMessage<WorkerMessage>(raw, {
        'llm-proxy:hello': () => {
          if (snapshot) send(worker, { type: 'llm-proxy:snapshot', snapshot });
        },
        'llm-proxy:listening': (message) => {
          listening.add(worker.id);
          boundAddress ??= message.address;
          if (readyWaiter && listening.size >= readyWaiter.count) {
            readyWaiter.resolve(boundAddress);
            readyWaiter = undefined;
          }
        },
        'llm-proxy:fatal': (message) => {
          log.error({ worker: worker.id, reason: message.message }, 'worker failed');
          if (readyWaiter) {
            readyWaiter.reject(new Error(message.message));
            readyWaiter = undefined;
          }
        },
      }),
    );
    worker.once('exit', (code, signal) => {
      listening.delete(worker.id);
      const lived = Date.now() - (startedAt.get(worker.id) ?? 0);
      startedAt.delete(worker.id);
      if (stopping) return;
      rapidDeaths = lived < youngDeathMs ? rapidDeaths + 1 : 0;
      const delay = rapidDeaths === 0 ? 0 : Math.min(maxBackoffMs, 100 * 2 ** (rapidDeaths - 1));
      log.error({ worker: worker.id, pid: worker.process.pid, exitCode: code, signal, restartInMs: delay }, 'worker exited unexpectedly, replacing it');
      setTimeout(() => {
        if (!stopping) fork();
      }, delay).unref();
    });
    return worker;
  };

  const workers = () => Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined);

  return {
    get workerCount() {
      return workers().length;
    },
    start(first, count) {
      snapshot = first;
      return new Promise((resolve, reject) => {
        readyWaiter = { resolve, reject, count };
        for (let i = 0; i < count; i++) fork();
      });
    },
    broadcast(next) {
      snapshot = next;
      for (const worker of workers()) send(worker, { type: 'llm-proxy:snapshot', snapshot: next });
    },
    shutdown(deadlineMs) {
      stopping = true;
      const alive = workers();
      if (alive.length === 0) return Promise.resolve();
      return new Promise((resolve) => {
        let remaining = alive.length;
        const killer = setTimeout(() => {
          for (const worker of workers()) worker.process.kill('SIGKILL');
        }, deadlineMs + 2_000);
        for (const worker of alive) {
          worker.once('exit', () => {
            remaining -= 1;
            if (remaining === 0) {
              clearTimeout(killer);
              resolve();
            }
          });
          send(worker, { type: 'llm-proxy:shutdown', deadlineMs });
        }
      });
    },
    killAll() {
      stopping = true;
      for (const worker of workers()) worker.process.kill('SIGKILL');
    },
  };
}
