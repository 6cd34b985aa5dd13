// `npm run demo` (or its inner `tsx scripts/demo.ts`) as a newcomer runs it, in a process group of
// its own as a shell with job control would start it, plus the /proc walking that tells whether
// every process it started is gone again.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const bannerStart = 'llm-proxy demo on https://localhost:';

export interface DemoProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  waitForOutput(text: string, timeoutMs?: number): Promise<void>;
  /** The exit code, or 128 + signal number. */
  readonly exited: Promise<number>;
}

/** How the demo is launched: the README's `npm run demo`, its inner `tsx scripts/demo.ts`, or `node --import tsx` (one process fewer, for tests that do not care). */
export type DemoLaunch = 'npm' | 'tsx' | 'node';

const launchers: Record<DemoLaunch, (args: string[]) => [string, string[]]> = {
  npm: (args) => ['npm', ['run', 'demo', '--', ...args]],
  tsx: (args) => [`${repoRoot}node_modules/.bin/tsx`, ['scripts/demo.ts', ...args]],
  node: (args) => [process.execPath, ['--import', 'tsx', 'scripts/demo.ts', ...args]],
};

export { isRefused } from './free-port.js';

export function startDemo(args: string[], opts: { launch: DemoLaunch; env?: NodeJS.ProcessEnv }): DemoProcess {
  const [command, commandArgs] = launchers[opts.launch](args);
  const child = spawn(command, commandArgs, { cwd: repoRoot, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let text = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    for (const listener of listeners) listener();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal]))));
  let gone = false;
  void exited.then(() => {
    gone = true;
    for (const listener of listeners) listener();
  });
  return {
    child,
    pid: child.pid ?? -1,
    output: () => text,
    exited,
    waitForOutput(wanted, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (text.includes(wanted)) finish();
          else if (gone) finish(new Error(`demo exited before printing "${wanted}":\n${text.slice(-3000)}`));
        };
        const finish = (err?: Error) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (err) reject(err);
          else resolve();
        };
        const timer = setTimeout(() => finish(new Error(`demo did not print "${wanted}" within ${timeoutMs} ms:\n${text.slice(-3000)}`)), timeoutMs);
        listeners.add(check);
        check();
      });
    },
  };
}

interface Stat {
  pid: number;
  ppid: number;
  state: string;
}

function readStat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pid, state: fields[0] ?? '', ppid: Number(fields[1]) };
  } catch {
    return undefined;
  }
}

/** Every live descendant of pid (children, their children, ...), from /proc. */
export function descendants(pid: number): number[] {
  const stats = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readStat(Number(name)))
    .filter((stat): stat is Stat => stat !== undefined && stat.state !== 'Z');
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift();
    for (const stat of stats) {
      if (stat.ppid === parent) {
        found.push(stat.pid);
        queue.push(stat.pid);
      }
    }
  }
  return found;
}

export function parentOf(pid: number): number | undefined {
  return readStat(pid)?.ppid;
}

export function isAlive(pid: number): boolean {
  const stat = readStat(pid);
  return stat !== undefined && stat.state !== 'Z';
}

export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

