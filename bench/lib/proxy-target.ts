// llm-proxy as a bench target: the built CLI, a real cluster and TLS, the default JSON access log
// going to a file as it would in production (not through the bench's own event loop).
import { spawn } from 'node:child_process';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import type { ProxyUnderTestOptions } from './nginx.js';

const cliPath = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface ProxyOptions extends ProxyUnderTestOptions {
  clientKey: string;
  /** Extra node flags for every proxy process, e.g. --cpu-prof. */
  nodeFlags?: readonly string[];
  /**
   * Further client keys, each with every kind of rate limit, configured beside the bench's own
   * (unlimited) key: what they may cost the keys without limits is what the bench then measures.
   */
  limitedKeys?: number;
  /**
   * Client keys on the route the load uses, the load's own key last of them: undefined keeps the
   * load's key global. Last, because a matcher that scanned the keys would find it at its slowest.
   */
  clientKeys?: number | undefined;
  /** Another build's CLI (bench/pinned-ab.ts compares builds); this checkout's dist/cli.js by default. */
  cliPath?: string;
}

export interface ProxyTarget {
  readonly pid: number;
  readonly logFile: string;
  stop(): Promise<void>;
}

export async function startLlmProxy(o: ProxyOptions): Promise<ProxyTarget> {
  const configFile = join(o.dir, 'llm-proxy.yml');
  const limited = Array.from({ length: o.limitedKeys ?? 0 }, (_, i) => ({
    key: `bench-limited-key-${String(i).padStart(4, '0')}`,
    name: `limited-${i}`,
    rate_limit: { requests_per_minute: 600, tokens_per_minute: 100_000, concurrent: 10 },
  }));
  const routeKeys =
    o.clientKeys === undefined ? undefined : [...Array.from({ length: o.clientKeys - 1 }, (_, i) => `bench-filler-key-${String(i).padStart(6, '0')}`), o.clientKey];
  await writeFile(
    configFile,
    stringify({
      cert_file: o.certFile,
      private_key_file: o.keyFile,
      listen: `127.0.0.1:${o.port}`,
      workers: o.workers,
      admin: { listen: false },
      auth_keys: routeKeys === undefined ? [o.clientKey, ...limited] : limited,
      providers: [
        {
          type: 'openai',
          host: '127.0.0.1',
          endpoint: '127.0.0.1',
          port: o.upstreamPort,
          tls: false,
          api_key: 'sk-bench-upstream-key',
          ...(routeKeys === undefined ? {} : { auth_keys: routeKeys }),
        },
      ],
    }),
  );
  const logFile = join(o.dir, 'llm-proxy.log');
  const log = await open(logFile, 'w');
  const child = spawn(process.execPath, [...(o.nodeFlags ?? []), o.cliPath ?? cliPath, 'start', '-c', configFile], {
    stdio: ['ignore', log.fd, log.fd],
    cwd: o.dir,
  });
  await log.close();
  const pid = child.pid;
  if (pid === undefined) throw new Error('llm-proxy did not start');
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const until = Date.now() + 15_000;
  for (;;) {
    const text = await readFile(logFile, 'utf8');
    if (text.includes('"msg":"ready"')) break;
    if (child.exitCode !== null || Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`llm-proxy did not become ready:\n${text.trim().split('\n').slice(-5).join('\n')}`);
    }
    await sleep(100);
  }
  return {
    pid,
    logFile,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
