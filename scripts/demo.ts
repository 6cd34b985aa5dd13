// `npm run demo`: a working proxy from a fresh clone with no real provider key. It checks its ports,
// makes (or reuses) a CA and a certificate, starts the mock providers, writes demo/config.yml,
// starts the built proxy, waits for its `ready` log line and prints commands that work. However it
// is stopped (Ctrl-C, SIGTERM or SIGHUP to any process of `npm run demo`, the terminal closing), the
// proxy and the mocks stop with it; see demo-lifeline.ts and demo-guard.mjs for how.
import { spawn } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, relative, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prettyFactory } from 'pino-pretty';
import { stringify } from 'yaml';
import { certificateFiles, writeLocalCertificates, type CertificateFiles } from '../src/primary/cert-command.js';
import { startMockProvider } from '../test/helpers/mock-provider.js';
import { demoBanner } from './demo-banner.js';
import { portIsFree, watchLaunchChain } from './demo-lifeline.js';
import { DemoUsageError, demoUsage, parseDemoOptions, type DemoOptions } from './demo-options.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cliPath = join(root, 'dist/cli.js');
const clientKey = 'demo-client-key';
const certificateHosts = ['localhost', '127.0.0.1', '::1', 'openai.example.com', 'anthropic.example.com', 'gemini.example.com'];
const readyTimeoutMs = 30_000;

// The terminal may be gone (SIGHUP): a failed write must not kill the demo before it has stopped
// the proxy.
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);
const print = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

function fail(reason: string, code = 1): never {
  process.stderr.write(`demo: ${reason}\n`);
  process.exit(code);
}

/** A path as the reader types it from the current directory (the repo root under npm run). */
function shown(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

/**
 * The certificates of an earlier run, when they still serve every demo name and are good for a week
 * more. Reusing them means a second demo (on other ports) never swaps ca.pem under the first one,
 * whose printed curl commands rely on it.
 */
async function reusableCertificates(files: CertificateFiles): Promise<boolean> {
  try {
    const [caPem, certPem, keyPem] = await Promise.all([readFile(files.caFile, 'utf8'), readFile(files.certFile, 'utf8'), readFile(files.keyFile, 'utf8')]);
    const ca = new X509Certificate(caPem);
    const cert = new X509Certificate(certPem);
    const weekFromNow = Date.now() + 7 * 24 * 60 * 60 * 1000;
    return (
      cert.verify(ca.publicKey) &&
      cert.checkPrivateKey(createPrivateKey(keyPem)) &&
      Date.parse(cert.validTo) > weekFromNow &&
      Date.parse(ca.validTo) > weekFromNow &&
      certificateHosts.every((name) => (isIP(name) === 0 ? cert.checkHost(name) : cert.checkIP(name)) !== undefined)
    );
  } catch {
    return false;
  }
}

function demoConfig(options: DemoOptions, files: CertificateFiles, mockPort: number): Record<string, unknown> {
  const upstream = { endpoint: '127.0.0.1', port: mockPort, tls: false };
  // Active health checks as an operator would set them: each provider's model list, every 10 s.
  const modelList = { health_check: { path: '/v1/models', timeout: 2 } };
  const geminiModelList = { health_check: { path: '/v1beta/models', timeout: 2 } };
  return {
    cert_file: files.certFile,
    private_key_file: files.keyFile,
    listen: `127.0.0.1:${options.port}`,
    admin: { listen: `127.0.0.1:${options.adminPort}` },
    workers: 2,
    // JSON, so the demo can read the proxy's `ready` line; it pretty-prints every line for you.
    log: { level: 'info', format: 'json' },
    // A demo has curl commands in flight, not hour-long streams: Ctrl-C should not wait 30 s.
    timeouts: { shutdown: 5 },
    auth_keys: [clientKey],
    health_check_interval: 10,
    providers: [
      // Host routing, as in the original's README.
      { type: 'openai', host: 'openai.example.com', ...upstream, api_keys: [{ key: 'sk-demo-upstream-a', weight: 1 }, { key: 'sk-demo-upstream-b', weight: 3 }], ...modelList },
      { type: 'anthropic', host: 'anthropic.example.com', ...upstream, api_key: 'sk-ant-demo-upstream', ...modelList },
      { type: 'gemini', host: 'gemini.example.com', ...upstream, api_key: 'gemini-demo-upstream', ...geminiModelList },
      // Path-prefix routing on one host name, handy for SDK base URLs.
      { type: 'openai', host: 'localhost/openai', ...upstream, api_key: 'sk-demo-upstream-a' },
      { type: 'anthropic', host: 'localhost/anthropic', ...upstream, api_key: 'sk-ant-demo-upstream' },
      { type: 'gemini', host: 'localhost/gemini', ...upstream, api_key: 'gemini-demo-upstream' },
    ],
  };
}

/** Written beside and renamed into place: a proxy started from it by another demo never reads half. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, text);
  await rename(temp, file);
}

/** The one-line reason a proxy start failed, from its last error log line. */
function startFailure(line: Record<string, unknown> | undefined, options: DemoOptions): string {
  if (line === undefined) return 'the proxy exited before it was ready (its output is above)';
  const reason = typeof line.reason === 'string' ? line.reason : '';
  if (reason.includes('EADDRINUSE')) {
    if (line.admin !== undefined) return `admin port ${options.adminPort} is in use: stop the other demo or set DEMO_ADMIN_PORT (npm run demo -- --admin-port N)`;
    return `port ${options.port} is in use: stop the other demo or set DEMO_PORT (npm run demo -- --port N)`;
  }
  return `the proxy could not start: ${String(line.msg)}${reason === '' ? '' : `: ${reason}`}`;
}

let options: DemoOptions;
try {
  const parsed = parseDemoOptions(process.argv.slice(2), process.env, root);
  if (parsed === 'help') {
    print(demoUsage);
    process.exit(0);
  }
  options = parsed;
} catch (err) {
  if (!(err instanceof DemoUsageError)) throw err;
  process.stderr.write(`demo: ${err.message}\n${demoUsage}\n`);
  process.exit(2);
}

if (!existsSync(cliPath)) fail(`${shown(cliPath)} is missing: run npm run build first (npm run demo does)`);
// Before anything is written: a second demo must leave the running one's files alone.
const checks: [number, string][] = [
  [options.port, `port ${options.port} is in use: stop the other demo or set DEMO_PORT (npm run demo -- --port N)`],
  [options.adminPort, `admin port ${options.adminPort} is in use: stop the other demo or set DEMO_ADMIN_PORT (npm run demo -- --admin-port N)`],
];
for (const [port, inUse] of checks) {
  const free = await portIsFree(port).catch((err: Error) => fail(`cannot listen on 127.0.0.1:${port}: ${err.message}`));
  if (!free) fail(inUse);
}

await mkdir(options.dir, { recursive: true });
const files = certificateFiles(options.dir);
if (!(await reusableCertificates(files))) await writeLocalCertificates(options.dir, certificateHosts, { force: true });
const mock = await startMockProvider();
const configFile = join(options.dir, 'config.yml');
const schemaRef = relative(options.dir, join(root, 'schema/config.schema.json'));
await writeAtomically(configFile, `# yaml-language-server: $schema=${schemaRef}\n${stringify(demoConfig(options, files, mock.port))}`);

// The guard runs the proxy and is its lifeline (see demo-guard.mjs). In a process group of its own,
// so Ctrl-C reaches the proxy once, from here, rather than also straight from the terminal: a
// primary treats a second signal as "exit now, do not drain".
const guard = spawn(process.execPath, [join(root, 'scripts/demo-guard.mjs'), process.execPath, '--enable-source-maps', cliPath, 'start', '-c', configFile, '--enable-health-check'], {
  stdio: ['pipe', 'pipe', 'inherit'],
  detached: true,
});
const prettify = prettyFactory({ colorize: process.stdout.isTTY === true });
let readyTimer: NodeJS.Timeout | undefined;
let ready = false;
let lastError: Record<string, unknown> | undefined;
let pending = '';

function onLogLine(line: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    print(line);
    return;
  }
  if (parsed === null || typeof parsed !== 'object') return void print(line);
  const entry = parsed as Record<string, unknown>;
  print(prettify(entry));
  if (typeof entry.level === 'number' && entry.level >= 50) lastError = entry;
  // The primary's own line once every worker listens; a substring of the text would also match
  // "already in use".
  if (!ready && entry.msg === 'ready' && typeof entry.listen === 'string') {
    ready = true;
    clearTimeout(readyTimer);
    const port = Number(entry.listen.split(':').pop());
    const adminPort = typeof entry.admin === 'string' ? Number(entry.admin.split(':').pop()) : options.adminPort;
    print(demoBanner({ port, adminPort, mockPort: mock.port, caFile: shown(files.caFile), configFile: shown(configFile), clientKey }));
  }
}

guard.stdout.on('data', (chunk: Buffer) => {
  pending += chunk.toString('utf8');
  for (let newline = pending.indexOf('\n'); newline !== -1; newline = pending.indexOf('\n')) {
    onLogLine(pending.slice(0, newline));
    pending = pending.slice(newline + 1);
  }
});

let stopping = false;
function stop(why: string): void {
  if (stopping) return;
  stopping = true;
  print(`demo: ${why}, stopping the proxy and the mock providers`);
  guard.kill('SIGTERM');
  // The guard ends the proxy within 10 s whatever happens; this is for a guard that hangs itself.
  setTimeout(() => killGroup('SIGKILL'), 15_000).unref();
}

function killGroup(signal: NodeJS.Signals): void {
  if (guard.pid === undefined || guard.exitCode !== null || guard.signalCode !== null) return;
  try {
    process.kill(-guard.pid, signal);
  } catch {
    // already gone
  }
}

readyTimer = setTimeout(() => {
  process.stderr.write(`demo: the proxy did not report ready within ${readyTimeoutMs / 1000} s (its output is above)\n`);
  stop('not ready');
}, readyTimeoutMs);

guard.on('exit', async (code) => {
  clearTimeout(readyTimer);
  await mock.close();
  if (!ready && !stopping) fail(startFailure(lastError, options));
  if (!stopping) fail(`the proxy exited by itself (code ${code}); its last lines are above`);
  process.exit(ready ? (code ?? 1) : 1);
});
// The last resort when this process ends any other way (an exception): the proxy must not outlive it.
process.on('exit', () => killGroup('SIGTERM'));

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(signal));
watchLaunchChain((why) => stop(`the process chain that started the demo broke (${why})`));
