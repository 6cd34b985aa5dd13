// `npm run bench`: llm-proxy side by side with direct access to the mock upstream, with nginx and with
// a bare Node proxy (bench/bare-proxy.ts), on this machine, in one run. Targets are interleaved within
// every round (direct, nginx, bare, llm-proxy, then again), and medians over rounds are reported, so
// the machine's noise cancels in the ratios.
import { spawnSync } from 'node:child_process';
import { access, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { Command, Option } from 'commander';
import { writeCertificates } from '../test/helpers/certs.js';
import { startBare } from './lib/bare-target.js';
import { imagePromptBody, smallBody } from './lib/bodies.js';
import { renderProfile, summariseProfile } from './lib/cpu-profile.js';
import { startMock } from './lib/mock-process.js';
import { startNginx } from './lib/nginx.js';
import { freePort, waitForPort } from './lib/ports.js';
import { processTree } from './lib/proc.js';
import { startLlmProxy } from './lib/proxy-target.js';
import { allPass, renderCheck, renderScenario, summarise, type Round, type ScenarioSummary } from './lib/report.js';
import { scenarios, targetNames, type BenchContext, type LoadPlan, type Target, type TargetName } from './lib/scenarios.js';

const root = fileURLToPath(new URL('..', import.meta.url));

const plans: Record<'full' | 'quick', LoadPlan> = {
  full: {
    rounds: 3,
    seconds: 10,
    latencySeconds: 15,
    warmUpSeconds: 2,
    sse: { streams: 1000, tokens: 200, intervalMs: 50, rampMs: 1000 },
    largeBodies: { streams: 200, tokens: 200, intervalMs: 50, rampMs: 1000, jsonBytes: 10 * 1024 * 1024, everyMs: 1000 },
  },
  quick: {
    rounds: 1,
    seconds: 3,
    latencySeconds: 4,
    warmUpSeconds: 1,
    sse: { streams: 200, tokens: 40, intervalMs: 50, rampMs: 500 },
    largeBodies: { streams: 200, tokens: 80, intervalMs: 50, rampMs: 500, jsonBytes: 10 * 1024 * 1024, everyMs: 1000 },
  },
};
const quickWarning = 'NOTE --quick: these numbers are not comparable with a full run (warm-up and runs too short, one round); use them to see that the bench works, not to compare';

const program = new Command('bench')
  .description('Measure llm-proxy against direct access, nginx and a bare Node proxy (see docs/performance.md)')
  .option('--quick', 'one short round of every scenario (a few minutes; numbers not comparable with a full run)')
  .option('--scenarios <ids>', 'comma-separated subset, e.g. S1,S3', 'S1,S2,S3,S4,S5,S6,S7')
  .option('--rounds <n>', 'rounds per scenario (default 3, quick 1)')
  .addOption(new Option('--workers <n>', 'worker processes for llm-proxy, the bare proxy and nginx').default('2'))
  .option('--strict', 'exit with code 1 when any budget fails (the results file is written first)')
  .option('--out <file>', 'where to write the JSON result (default bench/results/<time>.json)')
  .option('--keep', 'keep the run directory (configs, logs) for a look afterwards')
  .option('--limited-keys <n>', 'configure n more client keys with rate limits beside the (unlimited) key the load uses', '0')
  .option('--client-keys <n>', "configure n plain client keys on the load's route, the key the load sends last of them (default: that one key, global)")
  .option('--node-flags <flags>', 'extra node flags for the llm-proxy processes, e.g. "--max-semi-space-size=4"')
  .option('--profile', 'run llm-proxy and the bare proxy under --cpu-prof; keep the profiles and print where the time went in each (slows both down)');
program.parse();
const opts = program.opts<{ quick?: boolean; strict?: boolean; scenarios: string; rounds?: string; workers: string; out?: string; keep?: boolean; profile?: boolean; nodeFlags?: string; limitedKeys: string; clientKeys?: string }>();

const plan: LoadPlan = { ...plans[opts.quick === true ? 'quick' : 'full'] };
if (opts.rounds !== undefined) plan.rounds = positiveInt(opts.rounds, '--rounds');
const workers = positiveInt(opts.workers, '--workers');
const limitedKeys = opts.limitedKeys === '0' ? 0 : positiveInt(opts.limitedKeys, '--limited-keys');
const clientKeys = opts.clientKeys === undefined ? undefined : positiveInt(opts.clientKeys, '--client-keys');
const wanted = opts.scenarios.split(',').map((s) => s.trim().toUpperCase());
const selected = scenarios.filter((s) => wanted.includes(s.id));
if (selected.length !== wanted.length) fail(`--scenarios: unknown id among ${opts.scenarios} (known: ${scenarios.map((s) => s.id).join(',')})`);

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) fail(`${flag} must be a positive integer, got ${value}`);
  return n;
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

const say = (line = '') => process.stdout.write(`${line}\n`);

/** Every process of a proxy wrote a profile when it exited; the busiest are the workers. */
async function reportProfiles(target: string, profileDir: string): Promise<void> {
  const files = (await readdir(profileDir)).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(profileDir, f));
  const summaries = await Promise.all(files.map(async (file) => ({ file, summary: await summariseProfile(file) })));
  say();
  say(`CPU profiles of the ${target} processes (open a .cpuprofile in Chrome DevTools or speedscope for the flame graph):`);
  for (const { file, summary } of summaries.sort((a, b) => b.summary.busyMs - a.summary.busyMs)) say(renderProfile(file, summary));
}

async function onPath(command: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      await access(join(dir, command), fsConstants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

function versionOf(command: string, args: string[]): string {
  // nginx -v answers on stderr, the others on stdout.
  const result = spawnSync(command, args, { encoding: 'utf8' });
  return `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n')[0] ?? '';
}

const missing = [];
for (const tool of ['wrk', 'h2load', 'nginx']) if (!(await onPath(tool))) missing.push(tool);
if (missing.length > 0) fail(`missing ${missing.join(', ')}: run scripts/install-bench-tools.sh (Debian packages wrk, nghttp2-client, nginx-light)`);
try {
  await access(join(root, 'dist/cli.js'));
} catch {
  fail('dist/cli.js is missing: run `npm run build` first (npm run bench does)');
}

const dir = await mkdtemp(join(tmpdir(), 'llm-proxy-bench-'));
const certs = await writeCertificates(dir, { names: ['localhost', '127.0.0.1'] });
const clientKey = 'bench-client-key-0001';
const smallBodyFile = join(dir, 'small.json');
await writeFile(smallBodyFile, smallBody);
const largeBodyBytes = 1024 * 1024;
const largeBody = imagePromptBody(largeBodyBytes);
const largeBodyFile = join(dir, 'large.json');
await writeFile(largeBodyFile, largeBody);

const mock = await startMock(certs.certFile, certs.keyFile);
const nginxPort = await freePort();
const nginx = await startNginx({ dir, port: nginxPort, upstreamPort: mock.plainPort, workers, certFile: certs.certFile, keyFile: certs.keyFile });
await waitForPort(nginxPort, 'nginx');
const barePort = await freePort();
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
// Both Node proxies are profiled over the same load, so a cost can be told as llm-proxy's own or the stack's.
const profileDir = join(root, 'bench/results', `profiles-${stamp}`);
const bareProfileDir = join(profileDir, 'bare');
const profileFlags = (into: string) => (opts.profile === true ? ['--cpu-prof', `--cpu-prof-dir=${into}`] : []);
const bare = await startBare({ dir, port: barePort, upstreamPort: mock.plainPort, workers, certFile: certs.certFile, keyFile: certs.keyFile, nodeFlags: profileFlags(bareProfileDir) });
const proxyPort = await freePort();
const nodeFlags = [...(opts.nodeFlags?.split(/\s+/).filter((f) => f !== '') ?? []), ...profileFlags(profileDir)];
const proxy = await startLlmProxy({ dir, port: proxyPort, upstreamPort: mock.plainPort, workers, certFile: certs.certFile, keyFile: certs.keyFile, clientKey, nodeFlags, limitedKeys, clientKeys });

const targets: Record<TargetName, Target> = {
  direct: { name: 'direct', port: mock.tlsPort, pids: [mock.pid] },
  nginx: { name: 'nginx', port: nginxPort, pids: await processTree(nginx.pid) },
  bare: { name: 'bare', port: barePort, pids: await processTree(bare.pid) },
  'llm-proxy': { name: 'llm-proxy', port: proxyPort, pids: await processTree(proxy.pid) },
};

const ctx: BenchContext = { dir, caFile: certs.caFile, clientKey, mock, smallBodyFile, smallBody, largeBodyFile, largeBodyBytes, largeBodyCrc: crc32(largeBody), plan };
const meta = {
  startedAt: new Date().toISOString(),
  plan: opts.quick === true ? 'quick' : 'full',
  ...(opts.quick === true ? { comparableWithFullRun: false, note: quickWarning } : {}),
  workers,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  loadAverageAtStart: loadavg(),
  node: process.version,
  nginx: versionOf('nginx', ['-v']),
  wrk: versionOf('wrk', ['--version']),
  h2load: versionOf('h2load', ['--version']),
  commit: versionOf('git', ['-C', root, 'rev-parse', '--short', 'HEAD']),
  proxyNodeFlags: nodeFlags,
  limitedKeys,
  clientKeys: clientKeys ?? 1,
  settings: plan,
  bareProxy: bare.mode,
  strict: opts.strict === true,
};
say(`llm-proxy bench (${meta.plan}): ${workers} workers each for nginx, bare and llm-proxy, ${meta.cpus} CPUs shared with the load generators and the mock upstream`);
if (opts.quick === true) say(quickWarning);
say(`node ${meta.node}, ${meta.nginx}, load average ${meta.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}`);

const summaries: ScenarioSummary[] = [];
let interrupted = false;
process.on('SIGINT', () => {
  interrupted = true;
});
try {
  for (const scenario of selected) {
    say();
    say(`${scenario.id} ${scenario.title}`);
    for (const name of targetNames) await scenario.run(targets[name], ctx, true);
    const rounds: Round[] = [];
    for (let i = 0; i < plan.rounds && !interrupted; i++) {
      const round = {} as Round;
      for (const name of targetNames) {
        round[name] = await scenario.run(targets[name], ctx, false);
        say(`  round ${i + 1}/${plan.rounds} ${name.padEnd(9)} ${Object.entries(round[name]).map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(3)}`).join(' ')}`);
      }
      rounds.push(round);
    }
    if (rounds.length === 0) break;
    const summary = summarise(scenario.id, scenario.title, rounds);
    summaries.push(summary);
    say();
    say(renderScenario(summary));
  }
} finally {
  await proxy.stop();
  await bare.stop();
  await nginx.stop();
  await mock.stop();
  if (opts.profile === true) {
    await reportProfiles('llm-proxy', profileDir);
    await reportProfiles('bare proxy', bareProfileDir);
  }
  if (opts.keep === true) say(`run directory kept: ${dir}`);
  else await rm(dir, { recursive: true, force: true });
}

const out = opts.out ?? join(root, 'bench/results', `${stamp}.json`);
await mkdir(join(out, '..'), { recursive: true });
await writeFile(out, `${JSON.stringify({ meta, scenarios: summaries }, null, 2)}\n`);
say();
if (opts.quick === true) say(quickWarning);
say('Summary (budgets checked on this run):');
for (const summary of summaries) for (const c of summary.checks) say(`  ${summary.id} ${renderCheck(c)}`);
say(`results written to ${out}`);
if (opts.strict === true && !allPass(summaries)) {
  say('--strict: a budget failed, exit code 1');
  process.exitCode = 1;
}
