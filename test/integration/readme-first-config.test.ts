// The README's "A first config" and "Talking to it" work as written (issue 16): `cert` makes the
// certificate the config names, `check` accepts the config verbatim, and the curl command, with
// --resolve and the CA from `cert`, gets an answer through the proxy. Only what cannot run here is
// changed: the providers point at a mock and the ports are free ones.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { cliPath, keysUsed, startProxyWithFile, type ProxyProcess } from '../helpers/proxy-process.js';

const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');

/** The fenced blocks of one `lang` under a `## heading`, in order. */
function blocks(heading: string, lang: string): string[] {
  const start = readme.indexOf(`\n## ${heading}\n`);
  expect(start, heading).to.be.greaterThan(-1);
  const end = readme.indexOf('\n## ', start + 4);
  const section = readme.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1] as string);
}

function run(file: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: 15_000, encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }));
  });
}

/** A README command line as argv, `node dist/cli.js` being the built CLI. */
function cliArgs(line: string): string[] {
  const command = (line.split('#')[0] ?? '').trim().split(/\s+/);
  expect(command.slice(0, 2)).to.deep.equal(['node', 'dist/cli.js']);
  return command.slice(2);
}

describe("README: a first config, and talking to it", function () {
  this.timeout(40_000);
  let dir: string;
  let mock: MockProvider;
  let proxy: ProxyProcess | undefined;
  const commands = blocks('A first config', 'sh')[0]?.split('\n').filter((line) => line.startsWith('node dist/cli.js')) ?? [];
  const configText = blocks('A first config', 'yaml')[0] ?? '';

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'llm-proxy-readme-'));
    mock = await startMockProvider();
    const config = parse(configText) as { auth_keys: string[]; providers: { api_key: string }[] };
    for (const key of [...config.auth_keys, ...config.providers.map((p) => p.api_key)]) keysUsed.add(key);
  });
  after(async function () {
    await proxy?.stop();
    await mock?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('cert, then check on the config as written: exit 0', async function () {
    expect(commands.map((line) => cliArgs(line)[0])).to.deep.equal(['cert', 'check', 'start']);
    await writeFile(join(dir, 'config.yml'), configText);
    const cert = await run(process.execPath, [cliPath, ...cliArgs(commands[0] as string)], dir);
    expect(cert.code, cert.stderr).to.equal(0);
    const check = await run(process.execPath, [cliPath, ...cliArgs(commands[1] as string)], dir);
    expect(check.code, check.stderr).to.equal(0);
    expect(check.stdout).to.include('ok');
  });

  it("the curl command gets the provider's answer through the proxy", async function () {
    const config = parse(configText) as Record<string, unknown> & { providers: Record<string, unknown>[] };
    config.cert_file = join(dir, 'certs/cert.pem');
    config.private_key_file = join(dir, 'certs/key.pem');
    config.listen = '127.0.0.1:0';
    config.admin = { listen: '127.0.0.1:0' };
    config.workers = 2;
    for (const provider of config.providers) Object.assign(provider, { endpoint: '127.0.0.1', port: mock.port, tls: false });
    const file = join(dir, 'started.yml');
    await writeFile(file, stringify(config));
    proxy = await startProxyWithFile(file);
    const curlText = (blocks('Talking to it', 'sh')[0] ?? '').replace(/\\\n\s*/g, ' ').trim();
    expect(curlText).to.match(/^curl --resolve llm\.example\.com:8443:127\.0\.0\.1 /);
    const withPort = curlText.replaceAll(':8443', `:${proxy.port}`);
    const answer = await run('bash', ['-c', `${withPort} --silent --show-error --write-out '\\n%{http_code}'`], dir);
    expect(answer.code, answer.stderr).to.equal(0);
    const [body, status] = [answer.stdout.slice(0, answer.stdout.lastIndexOf('\n')), answer.stdout.slice(answer.stdout.lastIndexOf('\n') + 1)];
    expect(status).to.equal('200');
    expect(JSON.parse(body)).to.have.property('choices');
    expect(mock.requests.at(-1)?.headers.authorization).to.equal('Bearer sk-your-openai-api-key');
  });
});
