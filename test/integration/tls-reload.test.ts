// Issue 4 (SIGHUP): a replaced certificate is served to new connections, and TLS sessions still
// resume on any worker afterwards, which needs the primary's shared ticket keys to survive the swap
// (Node gives each worker fresh random keys on setSecureContext otherwise).
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { expect } from 'chai';
import { writeCertificates } from '../helpers/certs.js';
import { startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { startProxy, testCertificates, writeConfig, type ProxyProcess } from '../helpers/proxy-process.js';

interface Handshake {
  fingerprint: string;
  reused: boolean;
  session: Buffer | undefined;
}

/**
 * One TLS connection (HTTP/1.1 by ALPN) carrying one request to `path`, so the access log tells which
 * worker took it; resolves once the server closed it, by when the session ticket has arrived.
 */
function handshake(port: number, ca: string[], path: string, session?: Buffer): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    let ticket: Buffer | undefined;
    const socket: TLSSocket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'], ...(session ? { session } : {}) });
    socket.on('session', (data: Buffer) => (ticket = data));
    let result: Omit<Handshake, 'session'> | undefined;
    socket.once('secureConnect', () => {
      result = { fingerprint: socket.getPeerCertificate().fingerprint256, reused: socket.isSessionReused() };
      socket.write(`GET ${path} HTTP/1.1\r\nHost: tls.proxy.test\r\nConnection: close\r\n\r\n`);
    });
    socket.resume();
    socket.once('close', () => (result ? resolve({ ...result, session: ticket }) : reject(new Error('closed before the handshake'))));
    socket.once('error', reject);
  });
}

describe('certificate reload (SIGHUP)', function () {
  this.timeout(20_000);
  let mock: MockProvider;
  let proxy: ProxyProcess;
  let caPems: string[];
  let certDir: string;

  before(async function () {
    mock = await startMockProvider();
    const shared = await testCertificates();
    // The proxy gets its own copy of the files, so replacing them touches no other suite.
    const configFile = await writeConfig({ providers: [{ type: 'openai', host: 'tls.proxy.test', endpoint: '127.0.0.1', port: mock.port, tls: false }] });
    certDir = join(configFile, '..');
    await copyFile(shared.certFile, join(certDir, 'cert.pem'));
    await copyFile(shared.keyFile, join(certDir, 'key.pem'));
    const fresh = await writeCertificates(join(certDir, 'next'), { names: ['*.proxy.test', 'proxy.test'] });
    caPems = [shared.caPem, await readFile(fresh.caFile, 'utf8')];
    proxy = await startProxy({
      cert_file: join(certDir, 'cert.pem'),
      private_key_file: join(certDir, 'key.pem'),
      providers: [{ type: 'openai', host: 'tls.proxy.test', endpoint: '127.0.0.1', port: mock.port, tls: false }],
    });
    await copyFile(fresh.certFile, join(certDir, 'cert.pem'));
    await copyFile(fresh.keyFile, join(certDir, 'key.pem'));
  });
  after(async function () {
    await proxy?.stop();
    await mock?.close();
  });

  it('new connections get the new certificate; sessions then resume across both workers', async function () {
    const before = await handshake(proxy.port, caPems, '/before');
    proxy.child.kill('SIGHUP');
    await proxy.waitForLog((line) => line.msg === 'config applied', 5_000);
    const first = await handshake(proxy.port, caPems, '/first');
    expect(first.fingerprint).to.not.equal(before.fingerprint);
    expect(first.session).to.be.instanceOf(Buffer);
    // Round-robin (the primary accepting) alternates the workers; with each worker on its own socket
    // (Node 22.12+) the kernel picks one by a hash, so connections are made until both have served
    // some. With ticket keys per worker, about half of them would fall back to a full handshake.
    const resumed: boolean[] = [];
    const pids = new Set<unknown>();
    for (let i = 0; i < 40 && (i < 6 || pids.size < 2); i++) {
      resumed.push((await handshake(proxy.port, caPems, `/resumed-${i}`, first.session)).reused);
      pids.add((await proxy.waitForLog((line) => line.msg === 'request' && line.path === `/resumed-${i}`)).pid);
    }
    expect(resumed.every(Boolean), `resumed: ${resumed.join(',')}`).to.equal(true);
    expect(pids.size).to.equal(2);
  });
});
