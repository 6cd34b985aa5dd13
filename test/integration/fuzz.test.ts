// Issue 7: bounded, seeded fuzzing (FUZZ_SEED replays a run; FUZZ_ROUNDS scales it). Mutated
// HTTP/1.1 requests over raw TLS, random HTTP/2 requests, and mutated config files through the
// parser and `llm-proxy check`: no crash, no hang, only the statuses such input may get.
import { execFile } from 'node:child_process';
import { constants as h2, connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { request } from 'undici';
import { rawH1Exchange } from '../helpers/clients.js';
import { createRandom, type Random } from '../helpers/prng.js';
import { useProxyFixture } from '../helpers/proxy-fixture.js';
import { cliPath } from '../helpers/proxy-process.js';
import { ConfigError, parseConfigText } from '../../src/shared/config/parse.js';

const seed = Number(process.env.FUZZ_SEED ?? 20261201);
const rounds = Number(process.env.FUZZ_ROUNDS ?? 1);
const host = 'fuzz.proxy.test';
const clientKey = 'sk-test-fuzz-client-0001';

/** What malformed or random input may get from the proxy (or, when it is well-formed, the mock). */
const allowedStatuses = new Set([200, 400, 401, 404, 405, 408, 411, 413, 414, 415, 431, 501, 505]);

const h1Bases = [
  `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${clientKey}\r\nConnection: close\r\n\r\n`,
  `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${clientKey}\r\nContent-Type: application/json\r\nContent-Length: 52\r\nConnection: close\r\n\r\n{"model":"m","messages":[{"role":"user","content":"hi"}]}`.replace('52', '57'),
  `POST /openai/v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${clientKey}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
  `GET /v1/models?x=1 HTTP/1.1\r\nHost: ${host}:443\r\nConnection: close\r\n\r\n`,
];
const nasty = ['\r', '\n', '\u0000', ' ', ':', '%', '/', '.', '?', '#', '\u00ff', '\t', '"', '{', '0', '9', 'chunked', 'Content-Length: 9\r\n', 'Transfer-Encoding: chunked\r\n', '/../', '%2e%2e', 'http://x/'];

function mutateText(random: Random, text: string, times: number): string {
  let out = text;
  for (let i = 0; i < times; i++) {
    const at = random.int(out.length + 1);
    switch (random.int(5)) {
      case 0:
        out = out.slice(0, at) + random.pick(nasty) + out.slice(at);
        break;
      case 1:
        out = out.slice(0, at) + out.slice(at + 1 + random.int(4));
        break;
      case 2:
        out = out.slice(0, at) + String.fromCharCode(random.int(256)) + out.slice(at + 1);
        break;
      case 3: {
        // Repeat a line: duplicate headers, request lines twice.
        const lines = out.split('\n');
        const line = random.int(lines.length);
        lines.splice(line, 0, lines[line] ?? '');
        out = lines.join('\n');
        break;
      }
      default:
        out = out.slice(0, Math.max(1, at));
    }
  }
  return out;
}

function statusOf(raw: string): number | undefined {
  const match = /^HTTP\/1\.1 (\d{3})/.exec(raw);
  return match === null ? undefined : Number(match[1]);
}

async function inBatches<T>(items: T[], size: number, run: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(run));
}

function h2Attempt(session: ClientHttp2Session, random: Random): Promise<number | string> {
  const paths = ['/v1/models', '/openai/v1/chat/completions', '/v1/chat/completions?key=x', '//evil.test/x', '/openai/../v1', '/%2e%2e/', '*', '', `/${'a'.repeat(random.int(9000))}`, '/v1/é'];
  const headers: Record<string, string | string[]> = {
    ':method': random.pick(['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'CONNECT', 'BREW']),
    ':path': random.chance(0.5) ? random.pick(paths) : mutateText(random, random.pick(paths), 1 + random.int(2)),
    ':authority': random.pick([host, `${host}:443`, 'FUZZ.PROXY.TEST.', 'other.test', '127.0.0.1', `${host}.`]),
  };
  if (random.chance(0.7)) headers.authorization = random.pick([`Bearer ${clientKey}`, 'Bearer wrong', clientKey, '', 'Bearer']);
  if (random.chance(0.3)) headers.host = random.pick([host, 'elsewhere.test']);
  for (let i = random.int(4); i > 0; i--) headers[`x-fuzz-${random.int(1000)}`] = random.pick(['v', 'value with spaces', '%00', 'é', 'a'.repeat(random.chance(0.2) ? random.int(40_000) : 10)]);
  if (random.chance(0.1)) headers['content-length'] = String(random.int(100));
  const body = random.chance(0.5) ? Buffer.from(mutateText(random, '{"model":"m","stream":true,"messages":[]}', random.int(4))) : undefined;
  return new Promise((resolve) => {
    let stream;
    try {
      stream = session.request(headers, { endStream: body === undefined });
    } catch (err) {
      // node:http2 refused to send it (an invalid header name or value): nothing reached the proxy.
      return resolve(`refused by client: ${(err as { code?: string }).code ?? 'error'}`);
    }
    const timer = setTimeout(() => {
      stream.close(h2.NGHTTP2_CANCEL);
      resolve('hang');
    }, 6_000);
    let status: number | string = 'no response';
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', () => undefined);
    stream.on('close', () => {
      clearTimeout(timer);
      resolve(status === 'no response' && stream.rstCode !== 0 ? `reset ${stream.rstCode}` : status);
    });
    stream.on('error', () => undefined);
    if (body !== undefined) stream.end(body);
  });
}

describe(`fuzz (seed ${seed}, FUZZ_SEED to replay)`, function () {
  this.timeout(180_000);
  const fx = useProxyFixture((upstream) => ({
    auth_keys: [clientKey],
    // Short enough that every connection, however its request was mangled, ends within seconds:
    // a mutation that dropped `Connection: close` leaves a keep-alive connection behind.
    timeouts: { request_header: 2, idle: 2, keep_alive: 1 },
    limits: { max_body_bytes: 4096 },
    providers: [
      { type: 'openai', host, ...upstream, api_key: 'sk-test-fuzz-upstream-0002' },
      { type: 'openai', host: `${host}/openai`, ...upstream, api_key: 'sk-test-fuzz-upstream-0003' },
    ],
  }));
  const restarts = async () => ((await (await request(`http://127.0.0.1:${fx.proxy.adminPort}/status`)).body.json()) as { workers: { restarts: number } }).workers.restarts;

  it('mutated HTTP/1.1 requests get an allowed status or a closed connection, never a hang', async function () {
    const random = createRandom(seed);
    const cases = Array.from({ length: 160 * rounds }, () => mutateText(random, random.pick(h1Bases), 1 + random.int(4)));
    const seen = new Map<string, number>();
    // 80 at a time: most of the time goes to mangled heads waiting out timeouts.request_header.
    await inBatches(cases, 80, async (text) => {
      const started = performance.now();
      const answer = await rawH1Exchange(fx.proxy.caPem, fx.proxy.port, Buffer.from(text, 'latin1'), 8_000).catch(() => '');
      const elapsed = performance.now() - started;
      expect(elapsed, `no answer or close within 7 s for ${JSON.stringify(text)}`).to.be.below(7_000);
      const status = statusOf(answer);
      const label = status === undefined ? (answer === '' ? 'closed' : 'not HTTP') : String(status);
      seen.set(label, (seen.get(label) ?? 0) + 1);
      expect(label, `answer to ${JSON.stringify(text)}: ${JSON.stringify(answer.slice(0, 120))}`).to.not.equal('not HTTP');
      if (status !== undefined) expect(allowedStatuses.has(status), `status ${status} for ${JSON.stringify(text)}`).to.equal(true);
    });
    expect(seen.get('400') ?? 0, JSON.stringify([...seen])).to.be.greaterThan(10);
    expect(await restarts()).to.equal(0);
  });

  it('random HTTP/2 requests get an allowed status or a stream reset, never a hang', async function () {
    const random = createRandom(seed + 1);
    const seen = new Map<string, number>();
    fx.mock.reset();
    for (let batch = 0; batch < 10 * rounds; batch++) {
      const session = h2connect(`https://127.0.0.1:${fx.proxy.port}`, { ca: fx.proxy.caPem, servername: 'localhost' });
      session.on('error', () => undefined);
      const results = await Promise.all(Array.from({ length: 30 }, () => h2Attempt(session, random)));
      session.destroy();
      for (const result of results) {
        const label = String(result);
        seen.set(label, (seen.get(label) ?? 0) + 1);
        expect(label).to.not.equal('hang');
        if (typeof result === 'number') expect(allowedStatuses.has(result), `status ${result}`).to.equal(true);
      }
    }
    // Some of it was well-formed enough to be forwarded, and some was refused by the proxy itself.
    expect(fx.mock.requests.length, JSON.stringify([...seen])).to.be.greaterThan(0);
    expect(seen.get('400') ?? 0, JSON.stringify([...seen])).to.be.greaterThan(0);
    expect(await restarts()).to.equal(0);
  });

  describe('mutated config files', function () {
    const base = readFileSync(new URL('../fixtures/original-readme-config.yml', import.meta.url), 'utf8');
    const configNasty = ['\n', ': ', '- ', '[', ']', '{', '}', '"', "'", '#', '&a', '*a', '!!binary ', '<<: *a\n', '0x1F', '-1', '1e309', 'null', '~', '\t', '    ', '%YAML 1.1\n', '---\n'];

    it('the parser either accepts a mutation or throws a ConfigError naming fields, nothing else', function () {
      const random = createRandom(seed + 2);
      let accepted = 0;
      for (let i = 0; i < 2_000 * rounds; i++) {
        let text = base;
        for (let m = 1 + random.int(4); m > 0; m--) {
          const at = random.int(text.length + 1);
          text = random.chance(0.5) ? text.slice(0, at) + random.pick(configNasty) + text.slice(at) : text.slice(0, at) + text.slice(at + 1 + random.int(12));
        }
        try {
          parseConfigText(text, 'config.yml');
          accepted += 1;
        } catch (err) {
          if (!(err instanceof ConfigError)) throw new Error(`not a ConfigError for ${JSON.stringify(text)}: ${(err as Error).stack}`);
          for (const issue of err.issues) expect(issue.message, JSON.stringify(text)).to.be.a('string').and.not.equal('');
        }
      }
      expect(accepted).to.be.below(2_000 * rounds);
    });

    it('`llm-proxy check` exits 0 or 1 with a message on mutated files, never a stack trace', async function () {
      const random = createRandom(seed + 3);
      const dir = await mkdtemp(join(tmpdir(), 'llm-proxy-fuzz-'));
      try {
        const files = await Promise.all(
          Array.from({ length: 16 }, async (_, i) => {
            let text = base;
            for (let m = 1 + random.int(3); m > 0; m--) {
              const at = random.int(text.length + 1);
              text = text.slice(0, at) + random.pick(configNasty) + text.slice(at + random.int(6));
            }
            const file = join(dir, `config-${i}.yml`);
            await writeFile(file, text);
            return file;
          }),
        );
        await inBatches(files, 4, async (file) => {
          const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
            execFile(process.execPath, [cliPath, 'check', '-c', file], { timeout: 15_000 }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? null), output: `${stdout}${stderr}` }));
          });
          expect(code, output).to.be.oneOf([0, 1]);
          expect(output, 'a stack trace').to.not.match(/\n\s+at .+:\d+:\d+/);
          expect(output.trim()).to.not.equal('');
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
