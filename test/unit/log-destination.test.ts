// The log's batching destination: lines whole and in order, batch sizes by what stdout is, a bound
// on what waits for a reader that stopped, and nothing lost at process.exit.
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, openSync, readFileSync, readSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { LineBatcher, batchSizesFor, pipeAtomicBytes } from '../../src/shared/log-destination.js';

const line = (i: number) => `{"n":${i},"text":"${'x'.repeat(i % 300)}"}\n`;

describe('log destination', function () {
  let dir: string;
  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'llm-proxy-log-dest-'));
  });
  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes every line whole and in order, and flush() calls back once they are on disk', async function () {
    const file = join(dir, 'lines.log');
    const fd = openSync(file, 'w');
    const batcher = new LineBatcher(fd);
    let expected = '';
    for (let i = 0; i < 20_000; i++) {
      batcher.write(line(i));
      expected += line(i);
    }
    await new Promise<void>((resolve) => batcher.flush(resolve));
    closeSync(fd);
    expect(readFileSync(file, 'utf8') === expected, 'file content equals the lines in order').to.equal(true);
  });

  it('keeps multi-byte lines whole across batch edges, and a line longer than a write in its place', async function () {
    const file = join(dir, 'multibyte.log');
    const fd = openSync(file, 'w');
    // Small batches, so that edges fall everywhere: some lines are 3 and 4 bytes a character.
    const batcher = new LineBatcher(fd, { sizes: { batchBytes: 97, maxWriteBytes: 211 } });
    const pieces = ['é', '€', '😀', 'a'];
    let expected = '';
    for (let i = 0; i < 3_000; i++) {
      const text = (pieces[i % 4] as string).repeat(i % 37) + (i % 500 === 0 ? '🧵'.repeat(300) : '');
      const l = `{"i":${i},"t":"${text}"}\n`;
      batcher.write(l);
      expected += l;
    }
    await new Promise<void>((resolve) => batcher.flush(resolve));
    closeSync(fd);
    expect(readFileSync(file, 'utf8') === expected, 'file content equals the lines in order').to.equal(true);
  });

  it('writes a lone line after the flush interval, without more lines to fill a batch', async function () {
    const file = join(dir, 'lone.log');
    const fd = openSync(file, 'w');
    new LineBatcher(fd, { flushMs: 20 }).write('{"lone":true}\n');
    await new Promise((resolve) => setTimeout(resolve, 200));
    closeSync(fd);
    expect(readFileSync(file, 'utf8')).to.equal('{"lone":true}\n');
  });

  it('keeps writes to a pipe within PIPE_BUF, and may batch more for a file', function () {
    const file = join(dir, 'sizes.log');
    const fileFd = openSync(file, 'w');
    const fifo = join(dir, 'sizes.fifo');
    execFileSync('mkfifo', [fifo]);
    const readEnd = openSync(fifo, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    const writeEnd = openSync(fifo, 'w');
    try {
      expect(batchSizesFor(writeEnd).maxWriteBytes).to.equal(pipeAtomicBytes);
      expect(batchSizesFor(fileFd).maxWriteBytes).to.be.greaterThan(pipeAtomicBytes);
    } finally {
      for (const fd of [fileFd, readEnd, writeEnd]) closeSync(fd);
    }
  });

  it('drops lines past its bound while nobody reads, says how many once it catches up, and keeps the rest whole', async function () {
    const fifo = join(dir, 'stuck.fifo');
    execFileSync('mkfifo', [fifo]);
    const readEnd = openSync(fifo, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    const writeEnd = openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
    const reports: number[] = [];
    const batcher = new LineBatcher(writeEnd, { maxQueuedBytes: 256 * 1024, onDropped: (count) => reports.push(count) });
    const total = 20_000;
    let accepted = 0;
    for (let i = 0; i < total; i++) if (batcher.write(line(i))) accepted += 1;
    expect(batcher.dropped, 'lines dropped').to.equal(total - accepted);
    expect(batcher.dropped).to.be.greaterThan(total / 2);

    let text = '';
    const buffer = Buffer.alloc(64 * 1024);
    const flushed = new Promise<void>((resolve) => batcher.flush(resolve));
    let done = false;
    void flushed.then(() => (done = true));
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      try {
        const n = readSync(readEnd, buffer, 0, buffer.length, null);
        text += buffer.subarray(0, n).toString('utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        if (done) break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
    closeSync(readEnd);
    closeSync(writeEnd);
    const lines = text.split('\n');
    expect(lines.pop()).to.equal('');
    expect(lines, 'every accepted line arrived').to.have.length(accepted);
    for (const l of lines) JSON.parse(l);
    expect(reports).to.deep.equal([total - accepted]);
  });

  it('writes what is queued when the process exits at once', function () {
    const file = join(dir, 'exit.log');
    const destination = fileURLToPath(new URL('../../dist/shared/log-destination.js', import.meta.url));
    // The hook createLogger installs: flushSync on 'exit', after a process.exit that does not wait.
    // Fewer lines than one batch, so none is in flight on the threadpool (that one is left to it).
    const script = `
      import { openSync } from 'node:fs';
      import { LineBatcher } from ${JSON.stringify(destination)};
      const b = new LineBatcher(openSync(${JSON.stringify(file)}, 'w'));
      process.once('exit', () => b.flushSync());
      for (let i = 0; i < 2000; i++) b.write('{"i":' + i + '}\\n');
      process.exit(0);`;
    execFileSync(process.execPath, ['--input-type=module', '-e', script]);
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines.pop()).to.equal('');
    expect(lines.map((l) => (JSON.parse(l) as { i: number }).i)).to.deep.equal(Array.from({ length: 2000 }, (_, i) => i));
  });
});
