// Starts bench/mock-upstream.ts in a process of its own and reads its counters.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

const entry = fileURLToPath(new URL('../mock-upstream.ts', import.meta.url));

export interface MockStats {
  requests: number;
  bodiesChecked: number;
  bodyMismatches: number;
  streamsStarted: number;
  streamsCompleted: number;
  eventsSent: number;
}

export interface MockProcess {
  readonly pid: number;
  readonly plainPort: number;
  readonly tlsPort: number;
  stats(): Promise<MockStats>;
  stop(): Promise<void>;
}

export async function startMock(certFile: string, keyFile: string): Promise<MockProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, certFile, keyFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('the mock upstream did not start');
  const lines = createInterface({ input: child.stdout });
  const [first] = (await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => [undefined])])) as [string | undefined];
  if (first === undefined) throw new Error('the mock upstream exited before listening');
  lines.close();
  child.stdout.resume();
  const { plainPort, tlsPort } = JSON.parse(first) as { plainPort: number; tlsPort: number };
  const exited = once(child, 'exit');
  return {
    pid,
    plainPort,
    tlsPort,
    async stats() {
      const res = await request(`http://127.0.0.1:${plainPort}/__bench/stats`);
      return (await res.body.json()) as MockStats;
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
