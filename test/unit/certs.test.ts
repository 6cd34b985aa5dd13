import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { expect } from 'chai';
import { createCertificates, writeCertificates, type CertificateSet } from '../helpers/certs.js';

function getBody(url: string, ca: string, servername: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, servername, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

describe('test helper: certs', () => {
  let set: CertificateSet;
  let server: Server | undefined;
  let tempDir: string | undefined;

  before(async () => {
    set = await createCertificates({ names: ['proxy.test', '10.1.2.3'] });
  });

  afterEach(async () => {
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server?.close(() => resolve()));
      server = undefined;
    }
    if (tempDir) {
      await rm(tempDir, { recursive: true, force: true });
      tempDir = undefined;
    }
  });

  it('produces PEM strings with a PKCS#8 key', () => {
    expect(set.ca.cert).to.match(/^-----BEGIN CERTIFICATE-----\n/);
    expect(set.server.cert).to.match(/^-----BEGIN CERTIFICATE-----\n/);
    expect(set.server.key).to.match(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(set.ca.key).to.match(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('signs the server certificate with the CA and lists the SANs', () => {
    const ca = new X509Certificate(set.ca.cert);
    const leaf = new X509Certificate(set.server.cert);
    expect(ca.ca).to.equal(true);
    expect(leaf.ca).to.equal(false);
    expect(leaf.checkIssued(ca)).to.equal(true);
    expect(leaf.verify(ca.publicKey)).to.equal(true);
    expect(leaf.subjectAltName).to.include('DNS:localhost');
    expect(leaf.subjectAltName).to.include('DNS:*.localhost');
    expect(leaf.subjectAltName).to.include('DNS:proxy.test');
    expect(leaf.subjectAltName).to.include('IP Address:127.0.0.1');
    expect(leaf.subjectAltName).to.include('IP Address:10.1.2.3');
    expect(leaf.checkIP('::1')).to.equal('::1');
    expect(new Date(leaf.validFrom).getTime()).to.be.below(Date.now() - 60 * 60 * 1000);
    expect(leaf.keyUsage).to.include('1.3.6.1.5.5.7.3.1');
  });

  it('is accepted by tls.createSecureContext', () => {
    expect(() => createSecureContext({ cert: set.server.cert, key: set.server.key })).not.to.throw();
  });

  it('serves HTTPS that a client trusting only the CA accepts, by IP and by name', async () => {
    server = createServer({ cert: set.server.cert, key: set.server.key }, (_req, res) => res.end('ok'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;

    expect(await getBody(`https://127.0.0.1:${port}/`, set.ca.cert, '')).to.deep.equal({ status: 200, body: 'ok' });
    expect(await getBody(`https://127.0.0.1:${port}/`, set.ca.cert, 'localhost')).to.deep.equal({
      status: 200,
      body: 'ok',
    });
  });

  it('is rejected by a client that does not trust the CA', async () => {
    const other = await createCertificates();
    server = createServer({ cert: set.server.cert, key: set.server.key }, (_req, res) => res.end('ok'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;

    let error: unknown;
    try {
      await getBody(`https://127.0.0.1:${port}/`, other.ca.cert, 'localhost');
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(Error);
    expect((error as NodeJS.ErrnoException).code).to.be.oneOf([
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    ]);
  });

  it('writes ca.pem, cert.pem and key.pem to absolute paths', async () => {
    tempDir = await mkdtemp(join(tmpdir(), 'llm-proxy-certs-'));
    const files = await writeCertificates(join(tempDir, 'nested', 'dir'));
    for (const file of [files.caFile, files.certFile, files.keyFile]) expect(isAbsolute(file)).to.equal(true);
    expect(files.caFile.endsWith('ca.pem')).to.equal(true);
    const cert = await readFile(files.certFile, 'utf8');
    expect(cert.match(/BEGIN CERTIFICATE/g)).to.have.length(1);
    const key = await readFile(files.keyFile, 'utf8');
    expect(() => createSecureContext({ cert, key })).not.to.throw();
  });
});
