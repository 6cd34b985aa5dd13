// The setup most integration suites share: one mock provider, the proxy in front of it, and an
// HTTP/1.1 agent plus an HTTP/2 session that trust the test CA. Hooks are registered on the
// calling describe block; fields are filled in before its first test.
import type { ClientHttp2Session } from 'node:http2';
import type { Agent } from 'undici';
import { createH1Agent, openH2Session } from './clients.js';
import { startMockProvider, type MockProvider } from './mock-provider.js';
import { startProxy, type ProxyProcess } from './proxy-process.js';

export interface MockUpstream {
  endpoint: string;
  port: number;
  tls: false;
}

export interface ProxyFixture {
  mock: MockProvider;
  proxy: ProxyProcess;
  agent: Agent;
  session: ClientHttp2Session;
}

export function useProxyFixture(config: (upstream: MockUpstream) => Record<string, unknown> | Promise<Record<string, unknown>>): ProxyFixture {
  const fixture = {} as ProxyFixture;
  before(async function () {
    fixture.mock = await startMockProvider();
    fixture.proxy = await startProxy(await config({ endpoint: '127.0.0.1', port: fixture.mock.port, tls: false }));
    fixture.agent = createH1Agent(fixture.proxy.caPem);
    fixture.session = await openH2Session(fixture.proxy.caPem, fixture.proxy.port);
  });
  after(async function () {
    fixture.session?.close();
    await fixture.agent?.close();
    await fixture.proxy?.stop();
    await fixture.mock?.close();
  });
  return fixture;
}
