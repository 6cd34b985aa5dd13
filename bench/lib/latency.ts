// Runs bench/latency-client.ts in a process of its own, so its event loop and CPU stay apart from
// the bench's, and hands back its one-line JSON report.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LatencyReport, LatencyRun } from '../latency-client.js';

const entry = fileURLToPath(new URL('../latency-client.ts', import.meta.url));

export function runLatencyClient(run: LatencyRun): Promise<LatencyReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry, JSON.stringify(run)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`latency-client exited with ${code}: ${err.trim().split('\n').slice(-5).join('\n')}`));
      resolve(JSON.parse(out) as LatencyReport);
    });
  });
}
