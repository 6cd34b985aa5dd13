// Issue 5, shown 3 (admin part): the primary's plain-HTTP admin listener. /healthz while the process
// lives, /readyz 503 until every worker listens (and while one is being replaced), /status with
// routes, instances and health, and never a key.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { request } from 'undici';
import { createH1Agent, h1Request, h2Request, openH2Session } from '../helpers/clients.js';
import { closedPort } from '../helpers/free-port.js';
import { startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { cliPath, keysUsed, startProxy, writeConfig, type ProxyProcess } from '../helpers/proxy-process.js';
import { parseExposition } from '../helpers/prometheus.js';
import { waitUntil } from '../helpers/wait.js';

async function get(port: number, path: string): Promise<{ status: number; text: string; json: () => unknown }> {
  const res = await request(`http://127.0.0.1:${port}${path}`);
  const text = await res.body.text();
  return { status: res.statusCode, text, json: () => JSON.parse(text) };
}

/** Polls a path until `stop`, recording each status (0: refused). */
async function watch(port: number, path: string, stop: () => boolean): Promise<number[]> {
  const seen: number[] = [];
  while (!stop()) {
    seen.push(await get(port, path).then((res) => res.status, () => 0));
    await sleep(10);
  }
  return seen;
}

describe('admin listener', function () {
  this.timeout(20_000);
  let mock: MockProvider;

  before(async function () {
    mock = await startMockProvider();
  });
  after(async function () {
    await mock?.close();
  });

  it('/readyz is 503 until the workers listen, then 200; /healthz answers 200', async function () {
    const adminPort = await closedPort();
    const file = await writeConfig({
      admin: { listen: `127.0.0.1:${adminPort}` },
      providers: [{ type: 'openai', host: 'admin.proxy.test', endpoint: '127.0.0.1', port: mock.port, tls: false }],
    });
    const child = spawn(process.execPath, [cliPath, 'start', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    try {
      let ready = false;
      const statuses = await watch(adminPort, '/readyz', () => {
        ready ||= out.includes('"msg":"ready"');
        return ready;
      });
      // Whatever came before the listener (refused), then not ready, and only then ready.
      const answered = statuses.filter((status) => status !== 0);
      expect(answered.length, `statuses seen: ${statuses.join(',')}`).to.be.greaterThan(0);
      expect(answered[0]).to.equal(503);
      expect((await get(adminPort, '/readyz')).status).to.equal(200);
      expect((await get(adminPort, '/healthz')).status).to.equal(200);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });

  describe('on a running proxy', function () {
    let proxy: ProxyProcess;
    const clientKey = 'sk-test-admin-client-key-0001';

    before(async function () {
      proxy = await startProxy({
        auth_keys: [clientKey, { key: 'sk-test-admin-named-key-0002', name: 'team-a' }],
        providers: [
          { type: 'openai', host: 'admin.proxy.test', endpoint: '127.0.0.1', port: mock.port, tls: false, api_keys: [{ key: 'sk-test-admin-upstream-0003', weight: 2 }] },
          { type: 'anthropic', host: 'admin.proxy.test/claude', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: 'sk-test-admin-upstream-0004' },
        ],
      });
    });
    after(async function () {
      await proxy?.stop();
    });

    it('/status lists version, config, workers, routes with instances, weights and health, and no key', async function () {
      const res = await get(proxy.adminPort as number, '/status');
      expect(res.status).to.equal(200);
      const status = res.json() as {
        version: string;
        config: { version: number; reloads: { ok: number; failed: number } };
        workers: { wanted: number; list: { pid: number; listening: boolean }[] };
        routes: { route: string; type: string; clientKeys: string[]; instances: { name: string; weight: number; available: boolean; breaker: string; probe: string }[] }[];
      };
      expect(status.version).to.match(/^\d+\.\d+\.\d+/);
      expect(status.config.version).to.equal(1);
      expect(status.config.reloads).to.include({ ok: 0, failed: 0 });
      expect(status.workers.wanted).to.equal(2);
      expect(status.workers.list.map((worker) => worker.listening)).to.deep.equal([true, true]);
      expect(status.routes.map((route) => [route.route, route.type])).to.deep.equal([
        ['admin.proxy.test', 'openai'],
        ['admin.proxy.test/claude', 'anthropic'],
      ]);
      // An unnamed key shows as its fingerprint (the first 8 hex digits of its SHA-256), a named one by name.
      expect(status.routes[0]?.clientKeys).to.deep.equal([`key:${createHash('sha256').update(clientKey).digest('hex').slice(0, 8)}`, 'team-a']);
      // No --enable-health-check: nothing probes, and /status says so rather than 'up'.
      expect(status.routes[0]?.instances[0]).to.deep.include({ weight: 2, available: true, breaker: 'closed', probe: 'not_probed' });
      for (const key of keysUsed) expect(res.text).to.not.include(key);
    });

    it('/readyz turns 503 while a killed worker is replaced, then 200 again', async function () {
      this.timeout(30_000);
      const pid = (await get(proxy.adminPort as number, '/status').then((res) => res.json() as { workers: { list: { pid: number }[] } })).workers.list[0]?.pid as number;
      let back = false;
      const watching = watch(proxy.adminPort as number, '/readyz', () => back);
      process.kill(pid, 'SIGKILL');
      await proxy.waitForLog((line) => line.msg === 'worker exited unexpectedly, replacing it', 5_000);
      // A replacement can take seconds to load on a busy machine.
      let last = 0;
      for (let i = 0; i < 600 && (last = (await get(proxy.adminPort as number, '/readyz')).status) !== 200; i++) await sleep(25);
      back = true;
      // The watcher's last poll may have started before the replacement listened (seen in CI): what
      // counts is that it saw 503 meanwhile and that /readyz is 200 now.
      const statuses = await watching;
      expect(statuses).to.include(503);
      expect(last).to.equal(200);
    });

    it('/metrics sums exact totals over both workers, by route and status, in valid exposition format, with no key', async function () {
      const agent = createH1Agent(proxy.caPem);
      const h2 = await openH2Session(proxy.caPem, proxy.port);
      try {
        // A connection of its own for each HTTP/1.1 request: when the workers accept on their own
        // sockets (Node 22.12+) the kernel picks one by a hash, and a few kept-alive connections could
        // all land on one worker.
        const ok = (i: number) =>
          i % 2 === 0
            ? h1Request(agent, proxy.port, { host: 'admin.proxy.test', path: '/v1/chat/completions', body: '{}', headers: { authorization: `Bearer ${clientKey}`, 'x-metric-mix': String(i), connection: 'close' } })
            : h2Request(h2, { host: 'admin.proxy.test', path: '/v1/chat/completions', body: '{}', headers: { authorization: `Bearer ${clientKey}` } });
        const results = [
          ...(await Promise.all(Array.from({ length: 12 }, (_, i) => ok(i)))),
          ...(await Promise.all(Array.from({ length: 3 }, () => h1Request(agent, proxy.port, { host: 'admin.proxy.test', path: '/claude/v1/messages', body: '{}', headers: { authorization: `Bearer ${clientKey}`, 'x-mock-status': '503', connection: 'close' } })))),
          ...(await Promise.all(Array.from({ length: 2 }, () => h1Request(agent, proxy.port, { host: 'nowhere.proxy.test', path: '/v1/models' })))),
        ];
        expect(results.map((res) => res.status)).to.deep.equal([...Array(12).fill(200), 503, 503, 503, 404, 404]);
        // Access lines reach stdout in batches (up to 200 ms later).
        const served = () => proxy.logs.filter((line) => line.msg === 'request' && line.route === 'admin.proxy.test');
        await waitUntil(() => served().length >= 12, 3_000, 'the access-log lines of the mix');
        // The kernel's hash can still put every connection on one worker (1 in 64 for 7 of them, seen
        // in CI on Node 24): more HTTP/1.1 connections until both have served, all counted below.
        let okSent = 12;
        for (let round = 0; round < 10 && new Set(served().map((line) => line.pid)).size < 2; round++) {
          const more = await Promise.all(Array.from({ length: 8 }, (_, i) => ok(2 * i)));
          expect(more.map((res) => res.status)).to.deep.equal(Array(8).fill(200));
          okSent += more.length;
          await waitUntil(() => served().length >= okSent, 3_000, 'the access-log lines of the extra requests');
        }
        const pids = new Set(served().map((line) => line.pid));
        expect(pids.size, 'both workers served some of the mix').to.equal(2);

        const res = await get(proxy.adminPort as number, '/metrics');
        expect(res.status).to.equal(200);
        const samples = parseExposition(res.text);
        expect(samples.get('llm_proxy_requests_total{route="admin.proxy.test",provider="openai",status="200"}')).to.equal(okSent);
        expect(samples.get('llm_proxy_requests_total{route="admin.proxy.test/claude",provider="anthropic",status="503"}')).to.equal(3);
        expect(samples.get('llm_proxy_requests_total{route="",provider="",status="404"}')).to.equal(2);
        expect(samples.get('llm_proxy_request_duration_seconds_count{route="admin.proxy.test",provider="openai"}')).to.equal(okSent);
        expect(samples.get('llm_proxy_time_to_first_byte_seconds_bucket{le="300",route="admin.proxy.test",provider="openai"}')).to.equal(okSent);
        expect(samples.get('llm_proxy_upstream_errors_total{reason="status"}')).to.equal(3);
        expect(samples.get('llm_proxy_instance_healthy{route="admin.proxy.test",instance="127.0.0.1#0"}')).to.equal(1);
        expect(samples.get('llm_proxy_workers')).to.equal(2);
        expect(samples.get('llm_proxy_config_reloads_total{result="failed"}')).to.equal(0);
        expect([...samples.keys()].some((name) => name.startsWith('process_cpu_seconds_total'))).to.equal(true);
        for (const key of keysUsed) expect(res.text).to.not.include(key);
      } finally {
        h2.close();
        await agent.close();
      }
    });

    it('an unknown admin path is 404 in JSON, and only GET/HEAD are served', async function () {
      const missing = await get(proxy.adminPort as number, '/nope');
      expect(missing.status).to.equal(404);
      expect(missing.json()).to.have.property('endpoints');
      const post = await request(`http://127.0.0.1:${proxy.adminPort}/status`, { method: 'POST', body: '{}' });
      await post.body.dump();
      expect(post.statusCode).to.equal(405);
    });
  });
});
