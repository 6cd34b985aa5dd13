// Issue 7: what TLS the listener accepts. TLS 1.3 is preferred, TLS 1.2 works with forward-secret
// AEAD suites, and TLS 1.0/1.1, CBC suites and static-RSA key exchange are refused; checked with
// node:tls and, where it is installed, the openssl command line.
import { execFile } from 'node:child_process';
import { connect, type ConnectionOptions } from 'node:tls';
import { expect } from 'chai';
import { useProxyFixture } from '../helpers/proxy-fixture.js';

function handshake(port: number, caPem: string, options: ConnectionOptions): Promise<{ protocol: string | null; cipher: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: caPem, servername: 'localhost', ...options }, () => {
      const result = { protocol: socket.getProtocol(), cipher: socket.getCipher().name };
      socket.end();
      resolve(result);
    });
    socket.once('error', reject);
  });
}

function opensslConnects(port: number, args: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', ...args], { timeout: 10_000 }, (err, stdout) => {
      resolve(err === null && /Cipher is (?!\(NONE\))/.test(stdout));
    });
    child.stdin?.end();
  });
}

const openssl = new Promise<boolean>((resolve) => execFile('openssl', ['version'], (err) => resolve(err === null)));

describe('TLS policy of the listener', function () {
  this.timeout(20_000);
  const fx = useProxyFixture((upstream) => ({ providers: [{ type: 'openai', host: 'tls.proxy.test', ...upstream }] }));

  it('prefers TLS 1.3', async function () {
    expect((await handshake(fx.proxy.port, fx.proxy.caPem, {})).protocol).to.equal('TLSv1.3');
  });

  it('accepts TLS 1.2 with forward-secret AEAD suites', async function () {
    for (const cipher of ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305']) {
      expect(await handshake(fx.proxy.port, fx.proxy.caPem, { maxVersion: 'TLSv1.2', ciphers: cipher })).to.deep.equal({ protocol: 'TLSv1.2', cipher });
    }
  });

  it('refuses TLS 1.0 and 1.1', async function () {
    for (const version of ['TLSv1', 'TLSv1.1'] as const) {
      const failed = await handshake(fx.proxy.port, fx.proxy.caPem, { minVersion: version, maxVersion: version, ciphers: 'DEFAULT:@SECLEVEL=0' }).then(
        () => false,
        () => true,
      );
      expect(failed, version).to.equal(true);
    }
  });

  it('refuses CBC suites and static RSA key exchange over TLS 1.2', async function () {
    for (const cipher of ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384', 'ECDHE-RSA-AES128-SHA256', 'AES128-GCM-SHA256', 'AES256-SHA']) {
      const failed = await handshake(fx.proxy.port, fx.proxy.caPem, { maxVersion: 'TLSv1.2', ciphers: cipher }).then(
        () => false,
        () => true,
      );
      expect(failed, cipher).to.equal(true);
    }
  });

  it('openssl s_client agrees: TLS 1.1 and a CBC suite fail, TLS 1.2 with GCM succeeds', async function () {
    if (!(await openssl)) this.skip();
    expect(await opensslConnects(fx.proxy.port, ['-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0'])).to.equal(false);
    expect(await opensslConnects(fx.proxy.port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA'])).to.equal(false);
    expect(await opensslConnects(fx.proxy.port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256'])).to.equal(true);
  });
});
