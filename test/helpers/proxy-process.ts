// Runs the built CLI as an operator would: a temporary config.yml, a real cluster, real TLS. Every
// byte the proxy prints is kept (test/integration/zz-no-secrets checks it for keys at the end).
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { writeCertificates } from './certs.js';

export const cliPath = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

// `npm test` runs most files in parallel worker processes and the whole-suite secrets check
// (zz-no-secrets) after them, in another process: with LLM_PROXY_TEST_RECORD_DIR set, what each
// process records here is also appended to files there, one pair per process, for that check to read.
const recordDir = process.env.LLM_PROXY_TEST_RECORD_DIR;

class RecordedOutput extends Array<string> {
  override push(...items: string[]): number {
    if (recordDir !== undefined) appendFileSync(join(recordDir, `output-${process.pid}.log`), items.join(''));
    return super.push(...items);
  }
}

class RecordedKeys extends Set<string> {
  override add(key: string): this {
    if (recordDir !== undefined && !this.has(key)) appendFileSync(join(recordDir, `keys-${process.pid}.json`), `${JSON.stringify(key)}\n`);
    return super.add(key);
  }
}

/** Everything any proxy process printed during this test run (in this process). */
export const printedByProxies: string[] = new RecordedOutput();
/** Every key (client or upstream) written into a test config during this run (in this process). */
export const keysUsed: Set<string> = new RecordedKeys();

/** What every test process recorded: this one's, or with a record dir, all of them. */
export function recordedRun(): { output: string; keys: Set<string> } {
  if (recordDir === undefined) return { output: printedByProxies.join(''), keys: keysUsed };
  const names = readdirSync(recordDir);
  const output = names.filter((name) => name.startsWith('output-')).map((name) => readFileSync(join(recordDir, name), 'utf8')).join('');
  const keys = new Set(
    names
      .filter((name) => name.startsWith('keys-'))
      .flatMap((name) => readFileSync(join(recordDir, name), 'utf8').split('\n').filter((line) => line !== ''))
      .map((line) => JSON.parse(line) as string),
  );
  return { output, keys };
}

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export interface ProxyProcess {
  readonly port: number;
  /** The admin listener's port, when the config has one. */
  readonly adminPort: number | undefined;
  readonly origin: string;
  readonly configFile: string;
  readonly caPem: string;
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  output(): string;
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface TestCerts {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  caPem: string;
}

let certsPromise: Promise<TestCerts> | undefined;

/** One CA and server certificate for the whole run (key generation is the slow part). */
export function testCertificates(): Promise<TestCerts> {
  certsPromise ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llm-proxy-certs-'));
    const files = await writeCertificates(dir, { names: ['*.proxy.test', 'proxy.test'] });
    const { readFile } = await import('node:fs/promises');
    return { dir, ...files, caPem: await readFile(files.caFile, 'utf8') };
  })();
  return certsPromise;
}

function collectKeys(value: unknown, parentKey = ''): void {
  if (typeof value === 'string') {
    if (['api_key', 'key', 'auth_keys', 'api_keys'].includes(parentKey)) keysUsed.add(value);
    return;
  }
  if (Array.isArray(value)) for (const item of value) collectKeys(item, parentKey);
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) collectKeys(v, k);
}

/** Writes a config (cert paths filled in unless given) into a fresh temp dir. */
export async function writeConfig(config: Record<string, unknown>): Promise<string> {
  const certs = await testCertificates();
  const dir = await mkdtemp(join(tmpdir(), 'llm-proxy-test-'));
  // An ephemeral admin port too: several proxies run at once and 9090 may be taken.
  const full = { cert_file: certs.certFile, private_key_file: certs.keyFile, listen: '127.0.0.1:0', workers: 2, admin: { listen: '127.0.0.1:0' }, ...config };
  collectKeys(full);
  const file = join(dir, 'config.yml');
  await writeFile(file, stringify(full));
  return file;
}

/** `env`: variables set for the proxy on top of this process's environment. */
export async function startProxy(config: Record<string, unknown>, args: string[] = [], env: Record<string, string> = {}): Promise<ProxyProcess> {
  const configFile = await writeConfig(config);
  return startProxyWithFile(configFile, args, 10_000, env);
}

export async function startProxyWithFile(configFile: string, args: string[] = [], readyTimeoutMs = 10_000, env: Record<string, string> = {}): Promise<ProxyProcess> {
  const certs = await testCertificates();
  const child = spawn(process.execPath, [cliPath, 'start', '-c', configFile, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const logs: LogLine[] = [];
  const waiters = new Set<{ predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void }>();
  let text = '';
  let pending = '';
  const onLine = (line: string) => {
    try {
      const parsed = JSON.parse(line) as LogLine;
      logs.push(parsed);
      for (const waiter of waiters) {
        if (waiter.predicate(parsed)) {
          waiters.delete(waiter);
          waiter.resolve(parsed);
        }
      }
    } catch {
      // not a JSON line (stderr text); kept in `text` all the same
    }
  };
  const onData = (chunk: Buffer) => {
    const s = chunk.toString('utf8');
    text += s;
    printedByProxies.push(s);
    if (process.env.DEBUG_PROXY_LOG) process.stderr.write(s);
    pending += s;
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      onLine(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const waitForLog = (predicate: (line: LogLine) => boolean, timeoutMs = 5_000) => {
    const seen = logs.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (line: LogLine) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching log line within ${timeoutMs} ms; output so far:\n${text.slice(-3000)}`));
      }, timeoutMs);
      waiters.add(waiter);
    });
  };

  let ready: LogLine;
  try {
    ready = await Promise.race([
      waitForLog((line) => line.msg === 'ready', readyTimeoutMs),
      exited.then((code) => {
        throw new Error(`proxy exited with ${code} before ready:\n${text}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const port = Number(String(ready.listen).split(':').pop());
  return {
    port,
    adminPort: typeof ready.admin === 'string' ? Number(ready.admin.split(':').pop()) : undefined,
    origin: `https://localhost:${port}`,
    configFile,
    caPem: certs.caPem,
    child,
    logs,
    output: () => text,
    waitForLog,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export async function removeConfigDir(file: string): Promise<void> {
  await rm(join(file, '..'), { recursive: true, force: true });
}
