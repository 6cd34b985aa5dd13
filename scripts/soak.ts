// `npm run soak -- --minutes 10`: holds mixed traffic (HTTP/1.1 and HTTP/2, JSON and SSE, gzip,
// errors, a rate-limited key) against a real 2-worker cluster while reloading it every 15 s, samples
// the resident memory of every process, and fails unless each one levels off. Not part of npm test.
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { request } from 'undici';
import { rewriteConfig } from '../test/helpers/cluster-ops.js';
import { createH1Agent, h1Request, h2Request, openH2Session, type TestRequest } from '../test/helpers/clients.js';
import { startMockProvider } from '../test/helpers/mock-provider.js';
import { startProxy } from '../test/helpers/proxy-process.js';

const program = new Command('soak')
  .option('--minutes <n>', 'how long to hold the load', '10')
  .option('--rate <n>', 'requests a second, all kinds together', '150')
  .option('--sample-seconds <n>', 'seconds between memory samples', '10');
program.parse();
const opts = program.opts<{ minutes: string; rate: string; sampleSeconds: string }>();
const minutes = Number(opts.minutes);
const rate = Number(opts.rate);
const sampleMs = Number(opts.sampleSeconds) * 1000;
const say = (line: string) => process.stdout.write(`${line}\n`);

const clientKey = 'sk-soak-client-0001';
const limitedKey = 'sk-soak-limited-0002';
const mock = await startMockProvider();
const config = (step: number) => ({
  auth_keys: [clientKey, { key: limitedKey, name: 'limited', rate_limit: { requests_per_minute: 600, tokens_per_minute: 200_000, concurrent: 20 } }],
  health_check_interval: 5,
  providers: [
    { type: 'openai', host: 'soak.proxy.test', endpoint: '127.0.0.1', port: mock.port, tls: false, api_keys: [{ key: `sk-soak-upstream-a-${step % 3}`, weight: 1 + (step % 2) }, { key: 'sk-soak-upstream-b', weight: 1 }] },
    { type: 'anthropic', host: 'soak.proxy.test/claude', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: 'sk-soak-upstream-anthropic' },
    { type: 'gemini', host: 'soak.proxy.test/gemini', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: 'sk-soak-upstream-gemini' },
    // Upstream errors on a route of their own: on the main one they would trip its circuit breaker
    // (as they should) and turn the rest of the mix into 503s for the cooldown.
    { type: 'openai', host: 'soak-errors.proxy.test', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: 'sk-soak-upstream-errors' },
  ],
});
const proxy = await startProxy(config(0), ['--enable-health-check']);
const agent = createH1Agent(proxy.caPem);
let session = await openH2Session(proxy.caPem, proxy.port);

const auth = (key = clientKey) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });
const kinds: { name: string; weight: number; make: () => TestRequest; ok: number[] }[] = [
  { name: 'chat', weight: 30, make: () => ({ host: 'soak.proxy.test', path: '/v1/chat/completions', body: JSON.stringify({ model: 'soak', messages: [] }), headers: auth() }), ok: [200] },
  { name: 'chat-stream', weight: 15, make: () => ({ host: 'soak.proxy.test', path: '/v1/chat/completions', body: JSON.stringify({ model: 'soak', stream: true, stream_options: { include_usage: true }, messages: [] }), headers: { ...auth(), 'x-mock-tokens': '40', 'x-mock-delay-ms': '10' } }), ok: [200] },
  { name: 'anthropic-stream-gzip', weight: 10, make: () => ({ host: 'soak.proxy.test', path: '/claude/v1/messages', body: JSON.stringify({ model: 'c', stream: true, max_tokens: 9, messages: [] }), headers: { ...auth(), 'x-mock-gzip': '1', 'x-mock-tokens': '20' } }), ok: [200] },
  { name: 'gemini', weight: 10, make: () => ({ host: 'soak.proxy.test', path: '/gemini/v1beta/models/g:streamGenerateContent?alt=sse', body: '{}', headers: { 'x-goog-api-key': clientKey, 'content-type': 'application/json' } }), ok: [200] },
  { name: 'limited', weight: 15, make: () => ({ host: 'soak.proxy.test', path: '/v1/chat/completions', body: '{}', headers: auth(limitedKey) }), ok: [200, 429] },
  { name: 'unauthorized', weight: 5, make: () => ({ host: 'soak.proxy.test', path: '/v1/chat/completions', body: '{}', headers: auth('wrong') }), ok: [401] },
  { name: 'no-route', weight: 5, make: () => ({ host: 'nowhere.proxy.test', path: '/v1/models', headers: auth() }), ok: [404] },
  { name: 'upstream-503', weight: 10, make: () => ({ host: 'soak-errors.proxy.test', path: '/v1/chat/completions', body: '{}', headers: { ...auth(), 'x-mock-status': '503' } }), ok: [503] },
];
const totalWeight = kinds.reduce((sum, kind) => sum + kind.weight, 0);
const pickKind = () => {
  let n = Math.random() * totalWeight;
  for (const kind of kinds) if ((n -= kind.weight) < 0) return kind;
  return kinds[0] as (typeof kinds)[number];
};

const counts = { sent: 0, ok: 0, unexpected: 0, failed: 0, reloads: 0 };
const unexpected = new Map<string, number>();
const endAt = Date.now() + minutes * 60_000;
let inFlight = 0;

async function one(): Promise<void> {
  const kind = pickKind();
  const req = kind.make();
  const viaH2 = Math.random() < 0.5;
  counts.sent += 1;
  inFlight += 1;
  try {
    const res = viaH2 ? await h2Request(session, req) : await h1Request(agent, proxy.port, req);
    if (kind.ok.includes(res.status)) counts.ok += 1;
    else {
      counts.unexpected += 1;
      const label = `${kind.name} ${res.status}`;
      unexpected.set(label, (unexpected.get(label) ?? 0) + 1);
    }
  } catch (err) {
    counts.failed += 1;
    const label = `${kind.name} ${(err as { code?: string }).code ?? (err as Error).message}`;
    unexpected.set(label, (unexpected.get(label) ?? 0) + 1);
    if (session.destroyed || session.closed) session = await openH2Session(proxy.caPem, proxy.port);
  } finally {
    inFlight -= 1;
  }
}

async function residentMB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

async function workerPids(): Promise<number[]> {
  const res = await request(`http://127.0.0.1:${proxy.adminPort}/status`);
  const status = (await res.body.json()) as { workers: { list: { pid: number }[] } };
  return status.workers.list.map((worker) => worker.pid).sort((a, b) => a - b);
}

const samples: { atS: number; rss: Record<string, number> }[] = [];
const started = Date.now();
const sampler = (async () => {
  while (Date.now() < endAt) {
    const pids = await workerPids();
    const rss: Record<string, number> = { primary: await residentMB(proxy.child.pid as number) };
    for (const [i, pid] of pids.entries()) rss[`worker${i + 1}`] = await residentMB(pid);
    samples.push({ atS: Math.round((Date.now() - started) / 1000), rss });
    say(`t=${String(samples.at(-1)?.atS).padStart(4)}s ${Object.entries(rss).map(([name, mb]) => `${name}=${mb.toFixed(1)}MB`).join(' ')} sent=${counts.sent} ok=${counts.ok} unexpected=${counts.unexpected} failed=${counts.failed} reloads=${counts.reloads} inFlight=${inFlight}`);
    await sleep(sampleMs);
  }
})();
const reloader = (async () => {
  for (let step = 1; Date.now() < endAt - 5_000; step++) {
    await sleep(15_000);
    await rewriteConfig(proxy.configFile, config(step));
    proxy.child.kill('SIGHUP');
    await proxy.waitForLog((line) => line.msg === 'config applied' && line.configVersion === step + 1, 15_000);
    counts.reloads += 1;
  }
})();

say(`soak: ${minutes} min at ${rate} req/s, reload every 15 s, memory every ${sampleMs / 1000} s`);
const pending = new Set<Promise<void>>();
const intervalMs = 1000 / rate;
for (let next = Date.now(); Date.now() < endAt; next += intervalMs) {
  const wait = next - Date.now();
  if (wait > 0) await sleep(wait);
  const p = one();
  pending.add(p);
  void p.finally(() => pending.delete(p));
}
await Promise.all(pending);
await Promise.all([sampler, reloader]);

// Leveled off: after the first third (warm-up: JIT, pools, V8 heap growth), the last third's mean is
// no more than 10 % (plus 5 MB of slack for GC timing) above the middle third's.
const third = Math.max(1, Math.floor(samples.length / 3));
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
let grew = false;
say('');
say('process    first-third  middle-third  last-third  (mean RSS MB)');
for (const name of Object.keys(samples[0]?.rss ?? {})) {
  const series = samples.map((sample) => sample.rss[name] ?? 0);
  const [a, b, c] = [mean(series.slice(0, third)), mean(series.slice(third, 2 * third)), mean(series.slice(2 * third))];
  const levels = c <= b * 1.1 + 5;
  grew ||= !levels;
  say(`${name.padEnd(10)} ${a.toFixed(1).padStart(11)} ${b.toFixed(1).padStart(13)} ${c.toFixed(1).padStart(11)}  ${levels ? 'levels off' : 'STILL GROWING'}`);
}
say(`requests ${counts.sent}, as expected ${counts.ok}, unexpected ${counts.unexpected}, failed ${counts.failed}, reloads ${counts.reloads}`);
for (const [label, n] of unexpected) say(`  ${label}: ${n}`);

session.close();
await agent.close();
await proxy.stop();
await mock.close();
process.exitCode = grew || counts.failed > 0 ? 1 : 0;
