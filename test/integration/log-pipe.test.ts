// The log on a pipe whose reader is slow (a container runtime's log FIFO under load): the primary
// and both workers write to the one pipe, and every line must still come out whole. With writes
// larger than PIPE_BUF a writer that finds the pipe full copies part of its batch, sleeps, and another
// process's batch lands in the middle of its line.
import { spawn } from 'node:child_process';
import { closeSync, constants as fsConstants, openSync, readSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { Agent, request } from 'undici';
import { startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { cliPath, printedByProxies, testCertificates, writeConfig } from '../helpers/proxy-process.js';

const clientKey = 'sk-test-log-pipe-client-0001';

/** Reads the FIFO `bytesPerTick` at a time every 2 ms, or as fast as it can once told to. */
class SlowFifoReader {
  text = '';
  fast = false;
  #fd: number;
  #timer: NodeJS.Timeout;
  #eof: Promise<void>;

  constructor(path: string, bytesPerTick: number) {
    // Non-blocking, so opening does not wait for a writer and a read of an empty pipe returns EAGAIN.
    this.#fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    const buffer = Buffer.alloc(64 * 1024);
    let resolveEof: () => void;
    this.#eof = new Promise((resolve) => (resolveEof = resolve));
    this.#timer = setInterval(() => {
      for (let i = 0; i < (this.fast ? 64 : 1); i++) {
        let n: number;
        try {
          n = readSync(this.#fd, buffer, 0, this.fast ? buffer.length : bytesPerTick, null);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return;
          throw err;
        }
        if (n === 0) {
          clearInterval(this.#timer);
          closeSync(this.#fd);
          resolveEof();
          return;
        }
        const chunk = buffer.subarray(0, n).toString('utf8');
        this.text += chunk;
        printedByProxies.push(chunk);
      }
    }, 2);
  }

  /** Every writer has closed its end (the proxy exited). */
  eof(): Promise<void> {
    this.fast = true;
    return this.#eof;
  }
}

describe('log lines on a slow pipe', function () {
  this.timeout(90_000);
  let mock: MockProvider;
  let dir: string;

  before(async function () {
    mock = await startMockProvider();
    dir = await mkdtemp(join(tmpdir(), 'llm-proxy-log-pipe-'));
  });
  after(async function () {
    await mock?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stay whole while two workers and the primary write to a full pipe', async function () {
    const fifo = join(dir, 'stdout');
    execFileSync('mkfifo', [fifo]);
    const reader = new SlowFifoReader(fifo, 512);
    const writeEnd = openSync(fifo, 'w');
    const certs = await testCertificates();
    const configFile = await writeConfig({
      providers: [{ type: 'openai', host: 'pipe.proxy.test', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: 'sk-test-log-pipe-upstream-0001', auth_keys: [clientKey] }],
    });
    const child = spawn(process.execPath, [cliPath, 'start', '-c', configFile], { stdio: ['ignore', writeEnd, 'inherit'] });
    closeSync(writeEnd);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const agent = new Agent({ connections: 16, connect: { ca: certs.caPem, servername: 'localhost' } });
    try {
      const deadline = Date.now() + 20_000;
      let port: number | undefined;
      while (port === undefined && Date.now() < deadline) {
        const ready = reader.text.split('\n').find((line) => line.includes('"msg":"ready"'));
        if (ready !== undefined) port = Number(String((JSON.parse(ready) as { listen: string }).listen).split(':').pop());
        else await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(port, 'the ready line').to.be.a('number');

      // A long model name and request id (as long as the line keeps them) make each access line
      // ~900 bytes, so the pipe's 64 KiB fill within a few hundred requests; the reader drains 256 KB/s.
      const path = '/v1/chat/completions';
      const body = JSON.stringify({ model: 'm'.repeat(200), messages: [] });
      const requests = 2_400;
      let next = 0;
      const worker = async () => {
        while (next < requests) {
          next += 1;
          const res = await request(`https://127.0.0.1:${port}${path}`, {
            dispatcher: agent,
            method: 'POST',
            headers: { host: 'pipe.proxy.test', authorization: `Bearer ${clientKey}`, 'content-type': 'application/json', 'x-request-id': 'r'.repeat(128) },
            body,
          });
          await res.body.dump();
          expect(res.statusCode).to.equal(200);
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
    } finally {
      await agent.close();
      child.kill('SIGTERM');
    }
    await reader.eof();
    expect(await exited).to.equal(0);

    const lines = reader.text.split('\n');
    expect(lines.pop(), 'the output ends with a newline').to.equal('');
    const broken = lines.filter((line) => {
      try {
        JSON.parse(line);
        return false;
      } catch {
        return true;
      }
    });
    expect(broken.slice(0, 2), `${broken.length} of ${lines.length} lines are not whole JSON`).to.deep.equal([]);
    const access = lines.map((line) => JSON.parse(line) as { msg: string; pid: number; status?: number });
    const served = access.filter((line) => line.msg === 'request');
    expect(served, 'one access line per request').to.have.length(2_400);
    expect(new Set(served.map((line) => line.pid)).size, 'both workers served and logged').to.equal(2);
  });
});
