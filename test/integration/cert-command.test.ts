// `llm-proxy cert --out DIR [--host NAME...]` from the built CLI: a local CA and a server certificate
// that a real proxy serves and a real client verifies against the written ca.pem; existing files
// are never overwritten without --force; usage errors exit 2 like every other command.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { removeConfigDir, startProxy, type ProxyProcess } from '../helpers/proxy-process.js';

/** One HTTPS request to the proxy on 127.0.0.1, verified for `servername` against `ca` alone. */
function get(port: number, servername: string, ca: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, servername, ca, path, headers: { host: servername, authorization: 'Bearer client-test-cert-key-0001' }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(5_000, () => req.destroy(new Error('request timed out')));
    req.end();
  });
}

const fileNames = ['ca-key.pem', 'ca.pem', 'cert.pem', 'key.pem'];

describe('llm-proxy cert (built CLI)', function () {
  let dir: string;

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'llm-proxy-cert-'));
  });

  after(async function () {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('a certificate for --host foo.test, served by a real proxy', function () {
    let out: string;
    let result: CliResult;
    let mock: MockProvider;
    let proxy: ProxyProcess;

    before(async function () {
      out = join(dir, 'foo');
      result = await runCli(['cert', '--out', out, '--host', 'foo.test']);
      expect(result.code, result.stderr).to.equal(0);
      mock = await startMockProvider();
      proxy = await startProxy({
        cert_file: join(out, 'cert.pem'),
        private_key_file: join(out, 'key.pem'),
        auth_keys: ['client-test-cert-key-0001'],
        providers: [{ type: 'openai', host: 'foo.test', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: 'sk-test-cert-upstream-0001' }],
      });
    });

    after(async function () {
      await proxy?.stop();
      if (proxy) await removeConfigDir(proxy.configFile);
      await mock?.close();
    });

    it('writes ca.pem, ca-key.pem, cert.pem and key.pem, the private keys readable by their owner alone', async function () {
      expect((await readdir(out)).sort()).to.deep.equal(fileNames);
      for (const name of ['ca-key.pem', 'key.pem']) expect((await stat(join(out, name))).mode & 0o777, name).to.equal(0o600);
      const ca = new X509Certificate(await readFile(join(out, 'ca.pem')));
      const cert = new X509Certificate(await readFile(join(out, 'cert.pem')));
      expect(ca.ca).to.equal(true);
      expect(cert.ca).to.equal(false);
      expect(cert.verify(ca.publicKey)).to.equal(true);
      expect(cert.subjectAltName).to.equal('DNS:foo.test');
    });

    it('says it is self-signed and for trials only, with the config lines and the client hints', function () {
      expect(result.stdout).to.include('self-signed, for trials only');
      expect(result.stdout).to.include(`  cert_file: "${join(out, 'cert.pem')}"\n  private_key_file: "${join(out, 'key.pem')}"\n`);
      expect(result.stdout).to.include(`curl --cacert ${join(out, 'ca.pem')} https://foo.test/`);
      expect(result.stdout).to.include(`NODE_EXTRA_CA_CERTS=${join(out, 'ca.pem')} node`);
      expect(result.stderr).to.equal('');
    });

    it('a client that trusts only the written ca.pem gets through the proxy for Host foo.test, and is refused for a name the certificate lacks', async function () {
      const ca = await readFile(join(out, 'ca.pem'), 'utf8');
      const response = await get(proxy.port, 'foo.test', ca, '/v1/models');
      expect(response.status, response.body).to.equal(200);
      expect(mock.requests).to.have.length.greaterThan(0);
      let refused: NodeJS.ErrnoException | undefined;
      await get(proxy.port, 'localhost', ca, '/v1/models').catch((err: NodeJS.ErrnoException) => (refused = err));
      expect(refused?.code).to.equal('ERR_TLS_CERT_ALTNAME_INVALID');
    });
  });

  it('without --host: localhost, 127.0.0.1 and ::1', async function () {
    const out = join(dir, 'default');
    const result = await runCli(['cert', '--out', out]);
    expect(result.code, result.stderr).to.equal(0);
    const cert = new X509Certificate(await readFile(join(out, 'cert.pem')));
    expect(cert.subjectAltName).to.equal('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(result.stdout).to.include('for localhost, 127.0.0.1, ::1 into');
  });

  it('takes wildcard names, names in capitals (lower-cased) and IPv6 forms, one --host per name or several after one', async function () {
    const out = join(dir, 'forms');
    const result = await runCli(['cert', '--out', out, '--host', 'API.Example.test', '*.example.test', '--host', '::ffff:10.0.0.1', '--host', 'fe80::1:2']);
    expect(result.code, result.stderr).to.equal(0);
    const cert = new X509Certificate(await readFile(join(out, 'cert.pem')));
    expect(cert.subjectAltName).to.equal('DNS:api.example.test, DNS:*.example.test, IP Address:0:0:0:0:0:FFFF:A00:1, IP Address:FE80:0:0:0:0:0:1:2');
    expect(cert.checkHost('any.example.test')).to.equal('*.example.test');
    expect(cert.checkIP('fe80::1:2')).to.equal('fe80::1:2');
  });

  it('refuses to overwrite (exit 1, naming the files, nothing changed, not even the missing ones written) unless --force', async function () {
    const out = join(dir, 'existing');
    await runCli(['cert', '--out', out]);
    const before = await Promise.all(fileNames.map((name) => readFile(join(out, name), 'utf8')));
    const again = await runCli(['cert', '--out', out, '--host', 'other.test']);
    expect(again.code).to.equal(1);
    expect(again.stdout).to.equal('');
    expect(again.stderr).to.equal(`llm-proxy cert: ${['ca.pem', 'ca-key.pem', 'cert.pem', 'key.pem'].map((name) => join(out, name)).join(', ')} exist already; pass --force to overwrite\n`);
    expect(await Promise.all(fileNames.map((name) => readFile(join(out, name), 'utf8')))).to.deep.equal(before);

    const partial = join(dir, 'partial');
    await runCli(['cert', '--out', partial]);
    await Promise.all(['ca-key.pem', 'cert.pem', 'key.pem'].map((name) => rm(join(partial, name))));
    await writeFile(join(partial, 'ca.pem'), 'my own CA\n');
    const one = await runCli(['cert', '--out', partial]);
    expect(one.code).to.equal(1);
    expect(one.stderr).to.equal(`llm-proxy cert: ${join(partial, 'ca.pem')} exists already; pass --force to overwrite\n`);
    expect(await readdir(partial)).to.deep.equal(['ca.pem']);

    const forced = await runCli(['cert', '--out', out, '--host', 'other.test', '--force']);
    expect(forced.code, forced.stderr).to.equal(0);
    const after = await Promise.all(fileNames.map((name) => readFile(join(out, name), 'utf8')));
    after.forEach((text, i) => expect(text, fileNames[i]).to.not.equal(before[i]));
    const cert = new X509Certificate(await readFile(join(out, 'cert.pem')));
    expect(cert.verify(new X509Certificate(await readFile(join(out, 'ca.pem'))).publicKey)).to.equal(true);
    expect(cert.subjectAltName).to.equal('DNS:other.test');
  });

  it('--help explains it; a missing --out or a bad --host is a usage error (exit 2)', async function () {
    const help = await runCli(['cert', '--help']);
    expect(help.code).to.equal(0);
    expect(help.stdout).to.include('Usage: llm-proxy cert [options]');
    expect(help.stdout).to.include('self-signed: not for production');
    for (const flag of ['--out <DIR>', '--host <NAME...>', '--force']) expect(help.stdout).to.include(flag);
    expect(help.stdout).to.include('default: localhost 127.0.0.1 ::1');

    const noOut = await runCli(['cert']);
    expect(noOut.code).to.equal(2);
    expect(noOut.stderr).to.include("required option '--out <DIR>' not specified");
    const badHost = await runCli(['cert', '--out', join(dir, 'bad'), '--host', 'not a host']);
    expect(badHost.code).to.equal(2);
    expect(badHost.stderr).to.include('"not a host" is not a DNS name');
    expect((await readdir(dir)).includes('bad')).to.equal(false);
  });
});
