// Signals and reloads that arrive while the workers are still starting (issue 15): a SIGTERM then is
// a clean stop, not a failed start; a snapshot that reaches a worker while its listen is on the way
// counts, although its `listening` message names the version it started with.
import { spawn } from 'node:child_process';
import cluster from 'node:cluster';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { expect } from 'chai';
import { pino } from 'pino';
import { createSupervisor, type Supervisor } from '../../src/primary/supervisor.js';
import type { HealthTable } from '../../src/shared/ipc.js';
import type { Snapshot } from '../../src/shared/snapshot.js';
import { deadline } from '../helpers/clients.js';
import { exitOf } from '../helpers/cluster-ops.js';
import { cliPath, printedByProxies, removeConfigDir, writeConfig } from '../helpers/proxy-process.js';

describe('startup races', function () {
  this.timeout(20_000);

  it('SIGTERM before the workers are ready exits 0 without reporting that they could not start', async function () {
    const configFile = await writeConfig({
      workers: 1,
      providers: [{ type: 'openai', host: 'early.proxy.test', endpoint: '127.0.0.1', port: 9, tls: false }],
    });
    const child = spawn(process.execPath, [cliPath, 'start', '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const exited = exitOf(child);
    try {
      // 'admin listening' is logged just before the signal handlers are installed and the workers
      // forked, in the same turn; the workers then need a few hundred ms to load and listen.
      const forked = new Promise<void>((resolve) => {
        const onData = (chunk: Buffer) => {
          output += chunk.toString('utf8');
          printedByProxies.push(chunk.toString('utf8'));
          if (output.includes('"msg":"admin listening"')) resolve();
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
      });
      await deadline(forked, 10_000, 'admin listening');
      child.kill('SIGTERM');
      const exit = await deadline(exited, 10_000, 'exit after SIGTERM');
      expect(output, 'the signal came after the workers were ready: the race was not run').not.to.include('"msg":"ready"');
      expect(output).not.to.include('workers could not start');
      expect(exit, output).to.include({ code: 0, signal: null });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      await removeConfigDir(configFile);
    }
  });

  describe('a worker whose listen overtakes a newer snapshot', function () {
    let dir: string;
    let supervisor: Supervisor | undefined;

    before(async function () {
      // A worker at the process boundary that plays one fixed order of events: snapshot 1 arrives,
      // its listen is on the way while snapshot 2 arrives and is applied, then the listen completes.
      dir = await mkdtemp(join(tmpdir(), 'llm-proxy-fake-worker-'));
      await writeFile(
        join(dir, 'worker.mjs'),
        `let first;
process.on('message', (message) => {
  if (message.type === 'llm-proxy:shutdown') process.exit(0);
  if (message.type !== 'llm-proxy:snapshot') return;
  if (first === undefined) { first = message.snapshot.version; return; }
  process.send({ type: 'llm-proxy:snapshot-applied', version: message.snapshot.version });
  process.send({ type: 'llm-proxy:listening', version: first, address: { host: '127.0.0.1', port: 1 } });
});
process.send({ type: 'llm-proxy:hello' });
`,
      );
      cluster.setupPrimary({ exec: join(dir, 'worker.mjs'), args: [] });
    });

    after(async function () {
      await supervisor?.shutdown(1_000);
      await rm(dir, { recursive: true, force: true });
    });

    it('counts the newest version it applied (what /status shows and a reload waits for), not the one it listened with', async function () {
      const snapshot = (version: number) => ({ version, workers: 1, listen: { host: '127.0.0.1', port: 0, reusePort: false }, timeouts: { shutdownMs: 1_000 } }) as unknown as Snapshot;
      supervisor = createSupervisor({
        log: pino({ level: 'silent' }),
        healthTable: () => ({ seq: 0 }) as unknown as HealthTable,
        onHealthReport: () => undefined,
        onLimitMessage: () => undefined,
        onWorkerGone: () => undefined,
      });
      const hello = new Promise<void>((resolve) => cluster.once('message', () => resolve()));
      const started = supervisor.start(snapshot(1), 1);
      await deadline(hello, 10_000, 'hello of the worker');
      // The supervisor answers the hello with snapshot 1 in the same turn; 2 follows it.
      await nextTurn();
      const applied = supervisor.broadcast(snapshot(2));
      await deadline(started, 2_000, 'the worker listening');
      await deadline(applied, 2_000, 'snapshot 2 confirmed');
      expect(supervisor.workers().map((worker) => worker.snapshotVersion)).to.deep.equal([2]);
    });
  });
});
