// Runs bench/latency-client.ts in a process of its own, so its event loop and CPU stay apart from
// the bench's, and hands back its one-line JSON report.
import { fileURLToPath } from 'node:url';
import type { LatencyReport, LatencyRun } from '../latency-client.js';
import { runNodeClient } from './run-tool.js';

const entry = fileURLToPath(new URL('../latency-client.ts', import.meta.url));

export function runLatencyClient(run: LatencyRun): Promise<LatencyReport> {
  // Its warm-up and run, and as long again for connecting and a slow exit.
  return runNodeClient<LatencyReport>(entry, run, (2 * (run.seconds + run.warmUpSeconds) + 30) * 1000);
}
