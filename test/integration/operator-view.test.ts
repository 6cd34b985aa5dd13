// Issue 16, an operator's daily view: what the proxy says at startup (version, config path, one line
// per route up to a cap), how unnamed client keys are told apart (a fingerprint, never the key), what
// /status says about probing, and log.format: JSON through a pipe by default, one line per request
// when pretty.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { request } from 'undici';
import { createH1Agent, h1Request } from '../helpers/clients.js';
import { refusedPort } from '../helpers/free-port.js';
import { startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { cliPath, printedByProxies, startProxy, testCertificates, writeConfig, type ProxyProcess } from '../helpers/proxy-process.js';
import { waitUntil } from '../helpers/wait.js';

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const fingerprint = (key: string) => `key:${createHash('sha256').update(key).digest('hex').slice(0, 8)}`;

// Shorter than 16 characters: masked, both used to read `****`.
const shortKeys = ['Qz7xOpsShort01', 'Qz7xOpsShort02'];
const routeCount = 23;

describe('operator view', function () {
  let mock: MockProvider;
  before(async function () {
    mock = await startMockProvider();
  });
  after(async function () {
    await mock?.close();
  });

  describe('startup lines, key labels and /status (JSON logs through a pipe, the default)', function () {
    let proxy: ProxyProcess;
    before(async function () {
      const upstream = { endpoint: '127.0.0.1', port: mock.port, tls: false };
      proxy = await startProxy(
        {
          health_check_interval: 0.2,
          providers: [
            { type: 'openai', host: 'r00-ops.proxy.test', ...upstream, api_key: 'sk-test-ops-upstream-0000', auth_keys: [...shortKeys, { key: 'sk-test-ops-named-0001', name: 'ops-named' }] },
            { type: 'anthropic', host: 'r01-ops.proxy.test', ...upstream, api_keys: [{ key: 'sk-test-ops-upstream-0101' }, { key: 'sk-test-ops-upstream-0102' }] },
            { type: 'openai', host: 'r02-ops.proxy.test', endpoint: '127.0.0.1', port: await refusedPort(), tls: false, api_key: 'sk-test-ops-upstream-0200' },
            ...Array.from({ length: routeCount - 3 }, (_, i) => ({ type: 'openai', host: `r${String(i + 3).padStart(2, '0')}-ops.proxy.test`, ...upstream, api_key: `sk-test-ops-upstream-${i + 3}00` })),
          ],
        },
        ['--enable-health-check'],
      );
    });
    after(async function () {
      await proxy?.stop();
    });

    it('logs the version and the config path first, and the ready line carries both', function () {
      const starting = proxy.logs.find((line) => line.msg === 'starting');
      expect(starting).to.include({ version, config: proxy.configFile });
      const ready = proxy.logs.find((line) => line.msg === 'ready');
      expect(ready).to.include({ version, config: proxy.configFile });
      expect(proxy.logs.indexOf(starting as never)).to.be.lessThan(proxy.logs.indexOf(ready as never));
    });

    it('logs one line per route (host, type, instances, auth) up to 20, then how many more', function () {
      const lines = proxy.logs.filter((line) => line.msg === 'route');
      expect(lines).to.have.length(20);
      expect(lines[0]).to.include({ route: 'r00-ops.proxy.test', type: 'openai', instances: 1, auth: true });
      expect(lines[1]).to.include({ route: 'r01-ops.proxy.test', type: 'anthropic', instances: 2, auth: false });
      expect(lines[19]).to.include({ route: 'r19-ops.proxy.test' });
      const more = proxy.logs.filter((line) => line.msg === `and ${routeCount - 20} more routes`);
      expect(more).to.have.length(1);
      expect(more[0]).to.include({ more: routeCount - 20, routes: routeCount });
    });

    it('prints JSON lines only: log.format auto with stdout a pipe', function () {
      const lines = proxy.output().split('\n').filter((line) => line !== '' && !line.startsWith('(node:'));
      expect(lines.length).to.be.greaterThan(20);
      for (const line of lines) expect(() => JSON.parse(line) as unknown, line).not.to.throw();
    });

    it('tells short unnamed keys apart by fingerprint in the access log and /status, never showing them', async function () {
      const agent = createH1Agent(proxy.caPem);
      try {
        for (const key of [...shortKeys, 'sk-test-ops-named-0001']) {
          const res = await h1Request(agent, proxy.port, { host: 'r00-ops.proxy.test', path: '/v1/chat/completions', body: '{}', headers: { authorization: `Bearer ${key}` } });
          expect(res.status).to.equal(200);
          const id = res.headers['x-llm-proxy-request-id'];
          const line = await proxy.waitForLog((l) => l.msg === 'request' && l.reqId === id);
          expect(line.clientKey).to.equal(key.startsWith('sk-') ? 'ops-named' : fingerprint(key));
        }
      } finally {
        await agent.close();
      }
      const res = await request(`http://127.0.0.1:${proxy.adminPort}/status`);
      const text = await res.body.text();
      const status = JSON.parse(text) as { routes: { clientKeys: string[] }[] };
      expect(status.routes[0]?.clientKeys).to.deep.equal([...shortKeys.map(fingerprint), 'ops-named']);
      for (const key of shortKeys) expect(proxy.output() + text).not.to.include(key);
    });

    it('with --enable-health-check, /status shows probe results: up, and down for a refused upstream', async function () {
      type Status = { routes: { route: string; instances: { probe: string; lastProbeError?: string }[] }[] };
      const probes = async () => {
        const res = await request(`http://127.0.0.1:${proxy.adminPort}/status`);
        const status = (await res.body.json()) as Status;
        return new Map(status.routes.map((route) => [route.route, route.instances[0]?.probe]));
      };
      await waitUntil(async () => (await probes()).get('r02-ops.proxy.test') === 'down', 5_000, 'the refused upstream probed down');
      const seen = await probes();
      expect(seen.get('r00-ops.proxy.test')).to.equal('up');
      expect([...seen.values()]).not.to.include('not_probed');
    });
  });

  describe('log.format: pretty', function () {
    let child: ChildProcess | undefined;
    let text = '';
    after(async function () {
      if (child === undefined || child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((resolve) => child?.once('exit', resolve));
    });

    it('prints an access line as exactly one line, with the request id, method, path, status, duration, provider and key', async function () {
      const namedKey = 'sk-test-ops-pretty-client-0001';
      const configFile = await writeConfig({
        log: { format: 'pretty' },
        workers: 1,
        providers: [{ type: 'openai', host: 'pretty-ops.proxy.test', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: 'sk-test-ops-pretty-upstream-0001', auth_keys: [{ key: namedKey, name: 'pretty-client' }] }],
      });
      child = spawn(process.execPath, [cliPath, 'start', '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      const collect = (chunk: Buffer) => {
        const s = chunk.toString('utf8');
        text += s;
        printedByProxies.push(s);
        if (process.env.DEBUG_PROXY_LOG) process.stderr.write(s);
      };
      child.stdout?.on('data', collect);
      child.stderr?.on('data', collect);
      await waitUntil(() => /: ready /.test(text), 10_000, 'the pretty ready line');
      const readyLine = text.split('\n').find((line) => line.includes(': ready ')) as string;
      expect(readyLine).to.include(`"version":"${version}"`).and.to.include(`"config":"${configFile}"`);
      const port = Number(/"listen":"[^"]*:(\d+)"/.exec(readyLine)?.[1]);

      const agent = createH1Agent((await testCertificates()).caPem);
      let id: string;
      try {
        const res = await h1Request(agent, port, { host: 'pretty-ops.proxy.test', path: '/v1/chat/completions', body: '{"model":"pretty-model"}', headers: { authorization: `Bearer ${namedKey}` } });
        expect(res.status).to.equal(200);
        id = res.headers['x-llm-proxy-request-id'] as string;
      } finally {
        await agent.close();
      }
      await waitUntil(() => text.includes(id), 5_000, 'the access line');
      const lines = text.split('\n');
      const withId = lines.filter((line) => line.includes(id));
      expect(withId, text).to.have.length(1);
      const line = withId[0] as string;
      expect(line).to.match(new RegExp(`INFO .*: request ${id} POST /v1/chat/completions 200 [\\d.]+ms `));
      expect(line).to.include('provider=openai').and.to.include('key=pretty-client').and.to.include('pretty-model');
      // The next line is the next entry, not the rest of this one's object.
      const next = lines[lines.indexOf(line) + 1] ?? '';
      expect(next === '' || next.startsWith('[')).to.equal(true);
    });
  });
});
