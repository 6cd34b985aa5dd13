// The bare Node proxy (bench/bare-proxy.ts) as a bench target. It runs as plain JavaScript, bundled
// once into the run directory: under tsx every process of it would carry a loader thread and an
// esbuild service process, memory and processes that llm-proxy (built with tsc) does not have.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { BareOptions } from '../bare-proxy.js';
import type { ProxyUnderTestOptions } from './nginx.js';

const entry = fileURLToPath(new URL('../bare-proxy.ts', import.meta.url));

export interface BareProcess {
  readonly pid: number;
  /** How it runs: `bundled` (plain node) or `tsx` (when esbuild could not be loaded). */
  readonly mode: 'bundled' | 'tsx';
  stop(): Promise<void>;
}

/** esbuild comes with tsx; should it ever be missing, the proxy runs under tsx instead. */
async function bundle(dir: string): Promise<string | undefined> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    return undefined;
  }
  const outfile = join(dir, 'bare-proxy.mjs');
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // undici is CommonJS; its require() of node builtins needs a real require in an ES module.
    banner: { js: "import { createRequire as __benchRequire } from 'node:module'; const require = __benchRequire(import.meta.url);" },
    logLevel: 'error',
  });
  return outfile;
}

/** nodeFlags: for the primary, which cluster passes on to the workers (`--cpu-prof` profiles each). */
export async function startBare(o: ProxyUnderTestOptions & { nodeFlags?: readonly string[] }): Promise<BareProcess> {
  const bundled = await bundle(o.dir);
  const args: BareOptions = { port: o.port, upstreamPort: o.upstreamPort, workers: o.workers, certFile: o.certFile, keyFile: o.keyFile };
  const argv = bundled === undefined ? ['--import', 'tsx', entry] : [bundled];
  const child = spawn(process.execPath, [...(o.nodeFlags ?? []), ...argv, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('bare-proxy did not start');
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout });
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const [first] = (await Promise.race([once(lines, 'line'), exited.then(() => [undefined])])) as [string | undefined];
  clearTimeout(timer);
  if (first !== 'ready') throw new Error(`bare-proxy did not become ready (said ${JSON.stringify(first)})`);
  lines.close();
  child.stdout.resume();
  return {
    pid,
    mode: bundled === undefined ? 'tsx' : 'bundled',
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
