// `llm-proxy check -c FILE` from the built CLI, the way an operator runs it before a deploy (like
// `nginx -t`): exit 0 with a one-line summary, or exit 1 with every problem as path and line:column.
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { runCli } from '../helpers/cli.js';
import { parse } from 'yaml';
import { writeCertificates, type CertificateFiles } from '../helpers/certs.js';
import { keysUsed } from '../helpers/proxy-process.js';

const keyFields = new Set(['api_key', 'api_keys', 'auth_keys', 'key']);

function registerKeys(value: unknown, field = ''): void {
  if (typeof value === 'string') {
    if (keyFields.has(field)) keysUsed.add(value);
  } else if (Array.isArray(value)) {
    for (const item of value) registerKeys(item, field);
  } else if (value && typeof value === 'object') {
    for (const [name, child] of Object.entries(value)) registerKeys(child, name);
  }
}

/** 1-based line of the first line containing `needle`, so expectations follow the text they test. */
function lineOf(text: string, needle: string): number {
  const index = text.split('\n').findIndex((line) => line.includes(needle));
  expect(index, `"${needle}" is not in the config`).to.be.greaterThan(-1);
  return index + 1;
}

// The config.yml example of the original's README, verbatim except the certificate paths.
function originalExample(certFile: string, keyFile: string): string {
  return readFileSync(new URL('../fixtures/original-readme-config.yml', import.meta.url), 'utf8')
    .replace('cert_file: "/certs/certificate.pem"', `cert_file: ${JSON.stringify(certFile)}`)
    .replace('private_key_file: "/certs/private-key.pem"', `private_key_file: ${JSON.stringify(keyFile)}`);
}

describe('llm-proxy check (built CLI)', function () {
  let dir: string;
  let certs: CertificateFiles;
  let otherCerts: CertificateFiles;
  let configCount = 0;

  async function writeConfigText(text: string): Promise<string> {
    registerKeys(parse(text));
    const file = join(dir, `config-${++configCount}.yml`);
    await writeFile(file, text);
    return file;
  }

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'llm-proxy-check-'));
    [certs, otherCerts] = await Promise.all([writeCertificates(join(dir, 'certs-a')), writeCertificates(join(dir, 'certs-b'))]);
  });

  after(async function () {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("accepts the original README's example: exit 0, a one-line summary, nothing on stderr", async function () {
    const file = await writeConfigText(originalExample(certs.certFile, certs.keyFile));
    const result = await runCli(['check', '-c', file]);
    expect(result.stderr).to.equal('');
    expect(result.code).to.equal(0);
    expect(result.stdout.endsWith('\n')).to.equal(true);
    expect(result.stdout.trimEnd().split('\n')).to.have.length(1);
    expect(result.stdout.startsWith(`${file}: ok`)).to.equal(true);
    expect(result.stdout).to.include('4 routes').and.include('5 upstream instances').and.include('listen 0.0.0.0:443');
  });

  it('an unknown field: still exit 0, with a warning naming its path and line:column', async function () {
    const text = originalExample(certs.certFile, certs.keyFile)
      .replace('# TLS Configuration\n', 'lsiten: "0.0.0.0:8443"\n')
      .replace('      path: "/v1beta/models"\n', '      path: "/v1beta/models"\n      intervall: 5\n');
    const file = await writeConfigText(text);
    const result = await runCli(['check', '-c', file]);
    expect(result.code).to.equal(0);
    expect(result.stdout.startsWith(`${file}: ok`)).to.equal(true);
    expect(result.stderr.split('\n').filter(Boolean)).to.deep.equal([
      `warning: lsiten: unknown field, ignored; did you mean listen? (${file}:1:1)`,
      `warning: providers[1].health_check.intervall: unknown field, ignored (${file}:${lineOf(text, 'intervall')}:7)`,
    ]);
  });

  it('a misspelt field: still exit 0, the warning suggests the field it probably is', async function () {
    const text = originalExample(certs.certFile, certs.keyFile).replace('health_check_interval: 60', 'health_check_intervall: 60');
    const file = await writeConfigText(text);
    const result = await runCli(['check', '-c', file]);
    expect(result.code).to.equal(0);
    expect(result.stdout.startsWith(`${file}: ok`)).to.equal(true);
    expect(result.stderr).to.equal(
      `warning: health_check_intervall: unknown field, ignored; did you mean health_check_interval? (${file}:${lineOf(text, 'health_check_intervall')}:1)\n`,
    );
  });

  it('one mis-indented line: exit 1, that one YAML error with the line and a caret, no field errors from the broken tree', async function () {
    // A key of the first provider indented one space too little; valid YAML everywhere else.
    const text = originalExample(certs.certFile, certs.keyFile).replace('    endpoint: "api.openai.com"       #', '   endpoint: "api.openai.com"       #');
    const at = lineOf(text, '   endpoint: "api.openai.com"       #');
    // Written as is: the key registry parses the YAML, which this file is not.
    const file = join(dir, `config-${++configCount}.yml`);
    await writeFile(file, text);
    const result = await runCli(['check', '-c', file]);
    expect(result.code).to.equal(1);
    expect(result.stdout).to.equal('');
    const [first, source, caret, ...rest] = result.stderr.split('\n');
    expect(first).to.equal(`invalid YAML: Sequence item without - indicator; check this line's indentation against the lines above it (${file}:${at}:4)`);
    expect(source).to.equal(`  ${at} |    endpoint: "api.openai.com"       # Actual OpenAI API endpoint`);
    expect(caret).to.equal(`  ${' '.repeat(String(at).length)} |    ^`);
    expect(rest.filter(Boolean)).to.have.length(1);
    expect(rest[0]).to.match(/^ {2}\(\d+ more YAML errors after this one, most likely caused by it: fix this one and check again\)$/);
    expect(result.stderr).to.not.include('providers[');
  });

  it('a zero weight: exit 1, path and line:column on stderr, nothing on stdout', async function () {
    const text = originalExample(certs.certFile, certs.keyFile).replace('weight: 1.5', 'weight: 0');
    const file = await writeConfigText(text);
    const result = await runCli(['check', '-c', file]);
    expect(result.code).to.equal(1);
    expect(result.stdout).to.equal('');
    expect(result.stderr).to.equal(`providers[1].weight: must be a finite number greater than 0 (${file}:${lineOf(text, 'weight: 0')}:13)\n`);
  });

  it('several problems: all reported in one run, in file order', async function () {
    const text = originalExample(certs.certFile, certs.keyFile)
      .replace('weight: 1.2', 'weight: -1')
      .replace('endpoint: "generativelanguage.googleapis.com"', 'endpoint: "https://generativelanguage.googleapis.com"');
    const file = await writeConfigText(text);
    const result = await runCli(['check', '-c', file]);
    expect(result.code).to.equal(1);
    const geminiAt = lineOf(text, 'type: "gemini"');
    expect(result.stderr.split('\n').filter(Boolean)).to.deep.equal([
      `providers[1].endpoint: "https://generativelanguage.googleapis.com" must be a bare host name or IP address (no scheme, port or path; use port: for the port) (${file}:${geminiAt + 2}:15)`,
      `providers[2].weight: must be a finite number greater than 0 (${file}:${lineOf(text, 'weight: -1')}:13)`,
    ]);
  });

  it('a certificate file that does not exist: exit 1, cert_file: file not found, at its line', async function () {
    const missing = join(dir, 'no-such-cert.pem');
    const file = await writeConfigText(originalExample(missing, certs.keyFile));
    const result = await runCli(['check', '-c', file]);
    expect(result.code).to.equal(1);
    expect(result.stdout).to.equal('');
    expect(result.stderr).to.equal(`cert_file: file not found: ${missing} (${file}:2:12)\n`);
  });

  it('a private key that does not match the certificate: exit 1, names private_key_file', async function () {
    const file = await writeConfigText(originalExample(certs.certFile, otherCerts.keyFile));
    const result = await runCli(['check', '-c', file]);
    expect(result.code).to.equal(1);
    expect(result.stdout).to.equal('');
    expect(result.stderr).to.equal(`private_key_file: does not match the certificate in cert_file (${file}:3:19)\n`);
  });

  it('a config file that does not exist: exit 1', async function () {
    const result = await runCli(['check', '-c', join(dir, 'absent.yml')]);
    expect(result.code).to.equal(1);
    expect(result.stderr).to.include('cannot read the config file');
  });

  it('start without -c: a usage error, exit 2', async function () {
    const result = await runCli(['start']);
    expect(result.code).to.equal(2);
    expect(result.stderr).to.include('--config');
  });

  it('--version prints llm-proxy and the version of package.json, exit 0', async function () {
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const result = await runCli(['--version']);
    expect(result.code).to.equal(0);
    expect(result.stdout).to.equal(`llm-proxy ${version}\n`);
  });
});
