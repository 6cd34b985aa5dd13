// A/B of llm-proxy builds with less noise than the full bench: each target runs one worker pinned
// alone to CPU 1, while the mock upstream, wrk and this script share CPU 0, so the worker is the
// bottleneck and its CPU per request is what the rounds compare. Short rounds interleave the targets
// (the order reversed every other round), since this VM's speed drifts by a third within minutes:
// compare targets round by round, not run by run. The load is S1's (HTTP/1.1 keep-alive, small JSON),
// or with --body-bytes S5's (an image prompt of that many bytes), or with --streams S4's (SSE
// streams through bench/sse-client.ts, compared by CPU per 1,000 events).
//
//   npm run bench:ab -- --rev HEAD~1            the working tree against HEAD~1 (and bare Node)
//   npm run bench:ab -- --rev v1 --rev v2 --rounds 16
//   npm run bench:ab -- --rev HEAD~1 --body-bytes 1048576 --connections 16
//   npm run bench:ab -- --rev HEAD~1 --streams 200
//
// A revision is built from `git archive` in a temporary directory against this checkout's
// node_modules, so one whose dependencies differ must be compared by hand. Linux with taskset and
// at least two CPUs; see docs/performance.md, "Comparing two builds".
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { writeCertificates } from '../test/helpers/certs.js';
import { startBare } from './lib/bare-target.js';
import { imagePromptBody, smallBody } from './lib/bodies.js';
import { startMock } from './lib/mock-process.js';
import { freePort } from './lib/ports.js';
import { cpuMillis, processTree } from './lib/proc.js';
import { startLlmProxy } from './lib/proxy-target.js';
import { median } from './lib/stats.js';
import { runNodeClient } from './lib/run-tool.js';
import { runWrk } from './lib/wrk.js';
import type { SseReport, SseRun } from './sse-client.js';

const root = fileURLToPath(new URL('..', import.meta.url));

const program = new Command('bench:ab')
  .description('Compare llm-proxy builds (the working tree and git revisions), one pinned worker each, in interleaved rounds')
  .option('--rev <rev>', 'a git revision to build and compare (repeatable)', (rev: string, all: string[]) => [...all, rev], [] as string[])
  .option('--no-bare', 'leave out the bare Node proxy')
  .option('--rounds <n>', 'rounds per target', '12')
  .option('--seconds <n>', 'seconds per round', '3')
  .option('--connections <n>', 'wrk connections', '32')
  .option('--body-bytes <n>', "send an image prompt of this many bytes (S5's load) instead of the small JSON")
  .option('--streams <n>', "S4's load instead: this many SSE streams of 25 events a second for --seconds each")
  .parse();
const opts = program.opts<{ rev: string[]; bare: boolean; rounds: string; seconds: string; connections: string; bodyBytes?: string; streams?: string }>();
const rounds = Number(opts.rounds);
const seconds = Number(opts.seconds);
const connections = Number(opts.connections);
if (cpus().length < 2) throw new Error('bench:ab needs two CPUs: one for the workers, one for the load');

const say = (line: string) => process.stdout.write(`${line}\n`);
const pin = (pid: number, cpu: number) => execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
// Everything this script starts from now on inherits CPU 0; the targets are moved to CPU 1.
pin(process.pid, 0);

const dir = await mkdtemp(join(tmpdir(), 'llm-proxy-ab-'));

/** A checkout of `rev` with its dist/ built, in `dir`. */
async function buildRevision(rev: string): Promise<string> {
  const sha = execFileSync('git', ['rev-parse', '--short', rev], { cwd: root, encoding: 'utf8' }).trim();
  const checkout = await mkdtemp(join(dir, `rev-${sha}-`));
  execFileSync('sh', ['-c', `git archive ${sha} | tar -x -C '${checkout}'`], { cwd: root });
  await symlink(join(root, 'node_modules'), join(checkout, 'node_modules'));
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], { cwd: checkout, stdio: 'inherit' });
  return checkout;
}

interface AbTarget {
  readonly name: string;
  readonly port: number;
  readonly pids: number[];
  stop(): Promise<void>;
}

const certs = await writeCertificates(dir, { names: ['localhost', '127.0.0.1'] });
const clientKey = 'bench-client-key-0001';
const bodyFile = join(dir, 'body.json');
await writeFile(bodyFile, opts.bodyBytes === undefined ? smallBody : imagePromptBody(Number(opts.bodyBytes)));
// Built before anything is started: a revision that does not compile leaves no process behind.
const builds = [{ name: 'working', checkout: root }];
for (const rev of opts.rev) builds.push({ name: rev, checkout: await buildRevision(rev) });
const mock = await startMock(certs.certFile, certs.keyFile);

const targets: AbTarget[] = [];
if (opts.bare) {
  const port = await freePort();
  const bare = await startBare({ dir, port, upstreamPort: mock.plainPort, workers: 1, certFile: certs.certFile, keyFile: certs.keyFile });
  targets.push({ name: 'bare', port, pids: await processTree(bare.pid), stop: () => bare.stop() });
}
for (const build of builds) {
  const port = await freePort();
  const proxy = await startLlmProxy({
    dir: await mkdtemp(join(dir, 'proxy-')),
    port,
    upstreamPort: mock.plainPort,
    workers: 1,
    certFile: certs.certFile,
    keyFile: certs.keyFile,
    clientKey,
    cliPath: join(build.checkout, 'dist/cli.js'),
  });
  targets.push({ name: build.name, port, pids: await processTree(proxy.pid), stop: () => proxy.stop() });
}
for (const target of targets) for (const pid of target.pids) pin(pid, 1);

const headers = ['content-type: application/json', `authorization: Bearer ${clientKey}`];
const sseClient = fileURLToPath(new URL('./sse-client.ts', import.meta.url));
const streams = opts.streams === undefined ? undefined : Number(opts.streams);
const eventIntervalMs = 40;

/** One round's load: what was done (requests or events) and how fast. */
async function load(target: AbTarget, s: number): Promise<{ rate: number; units: number; errors: number }> {
  const url = `https://127.0.0.1:${target.port}/v1/chat/completions`;
  if (streams === undefined) {
    const result = await runWrk({ url, connections, threads: 1, seconds: s, headers, bodyFile });
    return { rate: result.rps, units: result.requests, errors: result.errors };
  }
  const run: SseRun = {
    origin: `https://127.0.0.1:${target.port}`,
    path: '/v1/chat/completions',
    caFile: certs.caFile,
    servername: 'localhost',
    streams,
    tokens: Math.max(1, Math.round((s * 1000) / eventIntervalMs)),
    intervalMs: eventIntervalMs,
    rampMs: 500,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${clientKey}` },
    body: smallBody,
  };
  const started = performance.now();
  const report = await runNodeClient<SseReport>(sseClient, run, (s + 60) * 1000);
  return { rate: report.events / ((performance.now() - started) / 1000), units: report.events, errors: report.failed };
}

const unitName = streams === undefined ? 'CPU µs/request' : 'CPU ms/1k events';
const rateName = streams === undefined ? 'req/s' : 'events/s';
const loadName = streams === undefined ? `${connections} connections` : `${streams} SSE streams at ${1000 / eventIntervalMs} events/s each`;
say(`bench:ab: ${targets.map((t) => t.name).join(', ')}; ${rounds} rounds of ${seconds} s, ${loadName}; one worker each on CPU 1`);
for (const target of targets) await load(target, 2);
// CPU per unit of work: µs per request, or with --streams ms per 1,000 events (S4's figure), both `ms used / units * 1000`.
const measured = new Map<string, { rps: number; cpu: number }[]>(targets.map((t) => [t.name, []]));
for (let round = 0; round < rounds; round++) {
  for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
    const before = await cpuMillis(target.pids);
    const result = await load(target, seconds);
    const used = (await cpuMillis(target.pids)) - before;
    if (result.errors > 0) say(`  ${target.name}: ${result.errors} errors in round ${round + 1}`);
    measured.get(target.name)?.push({ rps: result.rate, cpu: (used / result.units) * 1000 });
  }
}

const fixed = (n: number, digits = 0) => n.toFixed(digits);
say(`\ntarget        ${rateName.padStart(8)} median   ${unitName}: median   min   per round`);
for (const [name, rows] of measured) {
  const us = rows.map((r) => r.cpu);
  const digits = streams === undefined ? 0 : 1;
  say(`${name.padEnd(16)}${fixed(median(rows.map((r) => r.rps))).padStart(12)}${fixed(median(us), digits).padStart(25)}${fixed(Math.min(...us), digits).padStart(6)}   ${us.map((u) => fixed(u, digits)).join(' ')}`);
}
// Paired: each round's ratio to the working tree, measured minutes apart at most.
const working = measured.get('working') ?? [];
say(`\nCPU per ${streams === undefined ? 'request' : 'event'} against the working tree, median of the per-round ratios:`);
for (const [name, rows] of measured) {
  if (name === 'working') continue;
  const ratios = rows.map((r, i) => r.cpu / (working[i]?.cpu ?? Number.NaN));
  say(`  ${name.padEnd(14)} ${fixed(median(ratios), 3)}x  (rounds: ${ratios.map((r) => fixed(r, 2)).join(' ')})`);
}

for (const target of targets) await target.stop();
await mock.stop();
await rm(dir, { recursive: true, force: true });
