// Reads, validates and compiles a config off the primary's event loop. The primary accepts every
// connection (cluster round-robin), so a config of 10,000 client keys parsed inline (most of a
// second of YAML) would hold new connections up for that long: a reload must never stall traffic.
// This module is both sides: `loadSnapshotInThread` for the primary, and the thread's own body.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { ConfigError } from '../shared/config/parse.js';
import type { SharedStoreConfig } from '../shared/config/schema.js';
import type { Snapshot } from '../shared/snapshot.js';
import { buildSnapshot, type SnapshotOverrides } from './build-snapshot.js';
import { resolveWorkerCount } from './cpu-count.js';
import { loadConfig } from './load-config.js';

export interface SnapshotJob {
  configFile: string;
  version: number;
  ticketKeys: string;
  /** --workers, which wins over the config's `workers`. */
  workers: number | undefined;
  overrides: SnapshotOverrides;
}

export type SnapshotJobResult =
  | { ok: true; snapshot: Snapshot; sharedStore: SharedStoreConfig | undefined; warnings: readonly string[] }
  | { ok: false; error: string; issues: number };

async function runJob(job: SnapshotJob): Promise<SnapshotJobResult> {
  try {
    const loaded = await loadConfig(job.configFile);
    const workers = await resolveWorkerCount(job.workers ?? loaded.config.workers);
    const snapshot = buildSnapshot(loaded, job.version, job.ticketKeys, workers, job.overrides);
    return { ok: true, snapshot, sharedStore: loaded.config.shared_store, warnings: loaded.warnings };
  } catch (err) {
    return { ok: false, error: (err as Error).message, issues: err instanceof ConfigError ? err.issues.length : 1 };
  }
}

export interface ConfigLoader {
  load(job: SnapshotJob): Promise<SnapshotJobResult>;
  close(): Promise<void>;
}

/**
 * A thread started for a reload and kept while reloads come close together (a warm one parses
 * 10,000 keys in 1.3-2.2 s, a cold one in 2.0-3.0 s), then let go: kept for good it held 23 MB of
 * the primary's resident memory (70 MB instead of 93 MB idle) for a reload that may never come,
 * and a reload's speed does not touch traffic. It is unref'd, so it never keeps the primary alive,
 * and replaced if it dies. A job that cannot run is an error result, never a throw.
 */
export function createConfigLoader(idleMs = 30_000): ConfigLoader {
  let thread: Worker | undefined;
  let idleTimer: NodeJS.Timeout | undefined;
  let nextId = 0;
  const pending = new Map<number, (result: SnapshotJobResult) => void>();
  const stopWhenIdle = () => {
    clearTimeout(idleTimer);
    idleTimer = undefined;
    if (pending.size > 0 || thread === undefined) return;
    const idle = thread;
    idleTimer = setTimeout(() => {
      idleTimer = undefined;
      if (thread !== idle || pending.size > 0) return;
      thread = undefined;
      void idle.terminate();
    }, idleMs);
    idleTimer.unref();
  };

  const failAll = (error: string) => {
    for (const resolve of pending.values()) resolve({ ok: false, error, issues: 1 });
    pending.clear();
  };
  const threadFor = (): Worker => {
    if (thread !== undefined) return thread;
    const started = new Worker(new URL(import.meta.url), { workerData: { configThread: true } });
    started.unref();
    started.on('message', ({ id, result }: { id: number; result: SnapshotJobResult }) => {
      pending.get(id)?.(result);
      pending.delete(id);
      stopWhenIdle();
    });
    started.on('error', (err) => {
      if (thread === started) thread = undefined;
      failAll(`config thread failed: ${err.message}`);
    });
    started.on('exit', (code) => {
      if (thread === started) thread = undefined;
      failAll(`config thread exited with ${code} before answering`);
    });
    thread = started;
    return started;
  };

  return {
    load(job) {
      return new Promise((resolve) => {
        const id = nextId++;
        pending.set(id, resolve);
        clearTimeout(idleTimer);
        idleTimer = undefined;
        try {
          threadFor().postMessage({ id, job });
        } catch (err) {
          pending.delete(id);
          resolve({ ok: false, error: `config thread could not start: ${(err as Error).message}`, issues: 1 });
        }
      });
    },
    async close() {
      clearTimeout(idleTimer);
      await thread?.terminate();
      thread = undefined;
    },
  };
}

if (!isMainThread && parentPort !== null && (workerData as { configThread?: unknown } | null)?.configThread === true) {
  const port = parentPort;
  port.on('message', ({ id, job }: { id: number; job: SnapshotJob }) => {
    void runJob(job).then((result) => port.postMessage({ id, result }));
  });
}
