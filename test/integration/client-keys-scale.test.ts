// Issue 14, part 3: a config with 10,000 client keys starts, authenticates any of them, and a
// SIGHUP to another key set takes effect whole: a removed key is refused at once.
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Agent } from 'undici';
import { stringify } from 'yaml';
import { createH1Agent, h1Request } from '../helpers/clients.js';
import { startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { keysUsed, startProxyWithFile, testCertificates, type LogLine, type ProxyProcess } from '../helpers/proxy-process.js';

const keyCount = 10_000;
const clientKey = (set: string, i: number) => `sk-test-many-${set}-${String(i).padStart(5, '0')}-7d41c09e`;
const routeOnlyKey = 'sk-test-many-route-only-0001';

describe('10,000 client keys', function () {
  this.timeout(30_000);
  let mock: MockProvider;
  let proxy: ProxyProcess;
  let agent: Agent;
  let dir: string;
  let configFile: string;

  async function writeKeys(keys: string[]): Promise<void> {
    const certs = await testCertificates();
    const config = {
      cert_file: certs.certFile,
      private_key_file: certs.keyFile,
      listen: '127.0.0.1:0',
      workers: 2,
      admin: { listen: false },
      auth_keys: keys,
      providers: [
        { type: 'openai', host: 'one.proxy.test', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: 'sk-test-many-upstream-one-0001' },
        { type: 'openai', host: 'two.proxy.test', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: 'sk-test-many-upstream-two-0001', auth_keys: [routeOnlyKey] },
      ],
    };
    // Written here rather than through writeConfig, which would hand all 10,000 keys to the
    // end-of-suite secrets check (a substring search of the whole suite's output for each); the
    // keys this file sends, and so could leak, are registered below.
    const next = join(dir, 'next.yml');
    await writeFile(next, stringify(config));
    await rename(next, configFile);
  }

  async function statusWith(key: string, host = 'one.proxy.test'): Promise<number> {
    keysUsed.add(key);
    const res = await h1Request(agent, proxy.port, { host, path: '/v1/chat/completions', headers: { authorization: `Bearer ${key}` }, body: '{}' });
    return res.status;
  }

  before(async function () {
    for (const key of ['sk-test-many-upstream-one-0001', 'sk-test-many-upstream-two-0001', routeOnlyKey]) keysUsed.add(key);
    mock = await startMockProvider();
    dir = await mkdtemp(join(tmpdir(), 'llm-proxy-many-keys-'));
    configFile = join(dir, 'config.yml');
    await writeKeys(Array.from({ length: keyCount }, (_, i) => clientKey('a', i)));
    proxy = await startProxyWithFile(configFile, [], 20_000);
    agent = createH1Agent(proxy.caPem);
  });

  after(async function () {
    await agent?.close();
    await proxy?.stop();
    await mock?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('accepts the first, a middle and the last of them, on every route', async function () {
    for (const i of [0, 5_000, keyCount - 1]) {
      expect(await statusWith(clientKey('a', i)), `key ${i}`).to.equal(200);
      expect(await statusWith(clientKey('a', i), 'two.proxy.test'), `key ${i} on the second route`).to.equal(200);
    }
  });

  it('refuses a wrong key and a near miss with 401, before any upstream contact', async function () {
    const before = mock.requests.length;
    expect(await statusWith('sk-test-many-wrong-0001')).to.equal(401);
    expect(await statusWith(clientKey('a', keyCount - 1).slice(0, -1))).to.equal(401);
    expect(await statusWith(clientKey('a', keyCount))).to.equal(401);
    expect(mock.requests.length).to.equal(before);
  });

  it('a route key beside them opens its own route only', async function () {
    expect(await statusWith(routeOnlyKey, 'two.proxy.test')).to.equal(200);
    expect(await statusWith(routeOnlyKey, 'one.proxy.test')).to.equal(401);
  });

  it('a SIGHUP to another set of 10,000 takes it whole: removed keys are refused, added ones accepted', async function () {
    // Keeps the second half of the old set and adds as many new keys.
    const kept = Array.from({ length: keyCount / 2 }, (_, i) => clientKey('a', keyCount / 2 + i));
    const added = Array.from({ length: keyCount / 2 }, (_, i) => clientKey('b', i));
    await writeKeys([...kept, ...added]);
    proxy.child.kill('SIGHUP');
    await proxy.waitForLog((line: LogLine) => line.msg === 'config applied' && line.configVersion === 2, 15_000);

    expect(await statusWith(clientKey('a', 0)), 'removed: the old first key').to.equal(401);
    expect(await statusWith(clientKey('a', keyCount / 2 - 1)), 'removed: the last of the old first half').to.equal(401);
    expect(await statusWith(clientKey('a', keyCount / 2)), 'kept').to.equal(200);
    expect(await statusWith(clientKey('a', keyCount - 1)), 'kept, now in the middle').to.equal(200);
    expect(await statusWith(clientKey('b', 0)), 'added').to.equal(200);
    expect(await statusWith(clientKey('b', keyCount / 2 - 1), 'two.proxy.test'), 'added, last, on the second route').to.equal(200);
  });
});
