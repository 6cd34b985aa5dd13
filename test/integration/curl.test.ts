// curl as the client: ALPN picks h2 or HTTP/1.1 as asked, and SSE streams through to a terminal tool.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { startProxy, testCertificates, type ProxyProcess } from '../helpers/proxy-process.js';

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['--silent', '--show-error', ...args], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`curl failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

describe('curl through the proxy', function () {
  let mock: MockProvider;
  let proxy: ProxyProcess;
  let caFile: string;

  before(async function () {
    mock = await startMockProvider();
    proxy = await startProxy({
      auth_keys: ['client-test-curl-key-0001'],
      providers: [{ type: 'openai', host: 'localhost/openai', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: 'sk-test-curl-upstream-00001' }],
    });
    const certs = await testCertificates();
    caFile = join(certs.dir, 'ca.pem');
    await writeFile(caFile, certs.caPem);
  });

  after(async function () {
    await proxy?.stop();
    await mock?.close();
  });

  for (const [flag, version] of [['--http2', '2'], ['--http1.1', '1.1']] as const) {
    it(`streams SSE with curl ${flag}`, async function () {
      const out = await curl([
        flag,
        '-N',
        '--cacert',
        caFile,
        '-w',
        '\n%{http_code} %{http_version}',
        `${proxy.origin}/openai/v1/chat/completions`,
        '-H',
        'Authorization: Bearer client-test-curl-key-0001',
        '-H',
        'x-mock-delay-ms: 20',
        '-d',
        '{"model":"gpt-test","stream":true,"messages":[]}',
      ]);
      expect(out).to.include('"content":"tok4 "');
      expect(out).to.include('data: [DONE]');
      expect(out.trim().split('\n').at(-1)).to.equal(`200 ${version}`);
    });
  }
});
