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

/** The job's result from a thread of its own; one that cannot run is an error result, never a throw. */
export function loadSnapshotInThread(job: SnapshotJob): Promise<SnapshotJobResult> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (result: SnapshotJobResult) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    let thread: Worker;
    try {
      thread = new Worker(new URL(import.meta.url), { workerData: job });
    } catch (err) {
      return settle({ ok: false, error: `config thread could not start: ${(err as Error).message}`, issues: 1 });
    }
    thread.once('message', (result: SnapshotJobResult) => settle(result));
    thread.once('error', (err) => settle({ ok: false, error: `config thread failed: ${err.message}`, issues: 1 }));
    thread.once('exit', (code) => settle({ ok: false, error: `config thread exited with ${code} before answering`, issues: 1 }));
  });
}

if (!isMainThread && parentPort !== null && (workerData as { configFile?: unknown } | null)?.configFile !== undefined) {
  const port = parentPort;
  void runJob(workerData as SnapshotJob).then((result) => port.postMessage(result));
}
