// Issue 16, a newcomer's first hour: `npm run demo` prints commands that work as printed, refuses
// clearly when its ports are taken (without touching the running demo's files), and however it is
// stopped leaves no process behind.
import { exec, execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { refusedPort } from '../helpers/free-port.js';
import { waitUntil } from '../helpers/wait.js';
import { bannerStart, commandLine, descendants, isAlive, isRefused, parentOf, repoRoot, startDemo, type DemoLaunch, type DemoProcess } from '../helpers/demo-process.js';

function sh(command: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    exec(command, { cwd: repoRoot, env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

/** The printed line right after the comment line that starts with `comment`. */
function lineAfter(output: string, comment: string): string {
  const lines = output.split('\n');
  const at = lines.findIndex((line) => line.startsWith(comment));
  expect(at, `no "${comment}" in the demo output`).to.be.greaterThan(-1);
  let next = at + 1;
  while (lines[next]?.startsWith('#')) next += 1;
  return lines[next] ?? '';
}

/** An SDK snippet as printed: its `run: ENV=... node app.mjs` line and the code lines below it. */
function snippet(output: string, title: string): { env: Record<string, string>; code: string } {
  const lines = output.split('\n');
  const at = lines.findIndex((line) => line.startsWith(`# ${title}`));
  expect(at, `no "# ${title}" snippet in the demo output`).to.be.greaterThan(-1);
  const run = /run: (\w+)=(\S+) node app\.mjs$/.exec(lines[at] ?? '');
  expect(run, lines[at]).to.not.equal(null);
  const end = lines.indexOf('', at);
  return { env: { [run?.[1] ?? '']: run?.[2] ?? '' }, code: lines.slice(at + 1, end).join('\n') };
}

async function twoPorts(): Promise<[number, number]> {
  const port = await refusedPort();
  let adminPort = await refusedPort();
  while (adminPort === port) adminPort = await refusedPort();
  return [port, adminPort];
}

describe('npm run demo', function () {
  this.timeout(60_000);
  const dirs: string[] = [];

  async function demoOn(launch: DemoLaunch): Promise<{ demo: DemoProcess; dir: string; port: number; adminPort: number }> {
    const dir = await mkdtemp(join(tmpdir(), 'llm-proxy-demo-'));
    dirs.push(dir);
    const [port, adminPort] = await twoPorts();
    const demo = startDemo(['--port', String(port), '--admin-port', String(adminPort), '--dir', dir], { launch });
    await demo.waitForOutput('Ctrl-C stops the proxy', 45_000);
    return { demo, dir, port, adminPort };
  }

  // [how it is started, what is signalled, the signal]: each signal the issue names, each process of
  // the chain, one npm run (its build is the slow part). SIGINT to npm's pid alone reaches the demo
  // only because package.json's script execs tsx: npm passes the signal to its child, and a shell
  // left in between (dash, waiting for a command) would hold a SIGINT until that command ended.
  const stopCases = [
    { launch: 'npm', target: 'npm (the top pid)', signal: 'SIGINT' },
    { launch: 'tsx', target: 'tsx (the top pid)', signal: 'SIGTERM' },
    { launch: 'tsx', target: 'the whole process group, as a closing terminal does', signal: 'SIGHUP' },
    { launch: 'node', target: 'the demo script itself', signal: 'SIGKILL' },
  ] as const;
  let running: Awaited<ReturnType<typeof demoOn>>;
  const stoppable = new Map<(typeof stopCases)[number], Awaited<ReturnType<typeof demoOn>>>();

  before(async function () {
    // The npm run first and alone: its build rewrites dist/ while it runs, which a proxy starting
    // at that moment would read half-written.
    for (const stopCase of stopCases.filter((c) => c.launch === 'npm')) stoppable.set(stopCase, await demoOn('npm'));
    const others = stopCases.filter((c) => c.launch !== 'npm');
    [running] = await Promise.all([demoOn('node'), ...others.map(async (stopCase) => stoppable.set(stopCase, await demoOn(stopCase.launch)))]);
  });

  after(async function () {
    for (const { demo } of [running, ...stoppable.values()]) {
      if (demo === undefined) continue;
      for (const pid of [demo.pid, ...descendants(demo.pid)]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  describe('a running demo', function () {
    it('prints its ports, and curl commands that work as printed: a chat by Host, the x-mock-echo key swap, /metrics and /status', async function () {
      const { demo, port, adminPort } = running;
      const output = demo.output();
      expect(output).to.include(`${bannerStart}${port} (admin http://127.0.0.1:${adminPort};`);

      const chat = await sh(lineAfter(output, '# OpenAI chat completion, routed by Host'));
      expect(chat.code, chat.stderr).to.equal(0);
      const reply = JSON.parse(chat.stdout) as { choices: { message: { content: string } }[] };
      expect(reply.choices[0]?.message.content).to.be.a('string').and.not.equal('');

      const echo = await sh(lineAfter(output, '# The key swap made visible'));
      expect(echo.code, echo.stderr).to.equal(0);
      const seen = JSON.parse(echo.stdout) as { rawHeaders: string[] };
      const auth = seen.rawHeaders[seen.rawHeaders.findIndex((name) => name.toLowerCase() === 'authorization') + 1];
      expect(auth).to.equal('Bearer sk-demo-upstream-a');
      expect(seen.rawHeaders.join('\n')).to.not.include('demo-client-key');

      const adminLines = output.split('\n').filter((line) => line.startsWith(`curl http://127.0.0.1:${adminPort}/`));
      expect(adminLines.map((line) => line.split('/').pop())).to.deep.equal(['metrics', 'status']);
      const [metrics, status] = await Promise.all(adminLines.map((line) => sh(line)));
      expect(metrics?.stdout).to.match(/^llm_proxy_requests_total\{/m);
      expect((JSON.parse(status?.stdout ?? '') as { routes: unknown[] }).routes).to.have.length(6);
    });

    it('prints Node SDK snippets (openai, @anthropic-ai/sdk, @google/genai) that work as printed with NODE_EXTRA_CA_CERTS', async function () {
      const { demo, dir, port } = running;
      const output = demo.output();
      const titles = ['OpenAI Node SDK', 'Anthropic Node SDK', 'Google Gen AI Node SDK'];
      const runs = await Promise.all(
        titles.map(async (title) => {
          const { env, code } = snippet(output, title);
          expect(env).to.have.property('NODE_EXTRA_CA_CERTS');
          // `node app.mjs` with app.mjs as printed; evaluated from the repo root so the SDKs resolve.
          return new Promise<{ title: string; code: number; stdout: string; stderr: string }>((resolve) => {
            execFile(process.execPath, ['--input-type=module', '-e', code], { cwd: repoRoot, env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) =>
              resolve({ title, code: err === null ? 0 : -1, stdout, stderr }),
            );
          });
        }),
      );
      for (const run of runs) {
        expect(run.code, `${run.title}: ${run.stderr}`).to.equal(0);
        expect(run.stdout.trim(), run.title).to.not.equal('');
      }
      expect(output).to.include(`# OpenAI Python SDK (pip install openai), as app.py; run: SSL_CERT_FILE=${join(dir, 'ca.pem')} python app.py`);
      expect(output).to.include(`client = OpenAI(base_url="https://localhost:${port}/openai/v1", api_key="demo-client-key")`);
    });

    // The bug: "ready" was found as a substring of "FATAL admin listener could not start ... already
    // in use", so a second demo printed the banner, exited 1, and had rewritten the first one's files.
    for (const which of ['port', 'admin port'] as const) {
      it(`a second demo whose ${which} is taken says so in one line, exits 1 without the banner, and leaves the running demo's files alone`, async function () {
        const { demo, dir, port, adminPort } = running;
        const names = ['ca.pem', 'cert.pem', 'key.pem', 'config.yml'];
        const before = await Promise.all(names.map((name) => readFile(join(dir, name), 'utf8')));
        const [otherPort, otherAdmin] = await twoPorts();
        const ports = which === 'port' ? [port, otherAdmin] : [otherPort, adminPort];
        const second = startDemo(['--port', String(ports[0]), '--admin-port', String(ports[1]), '--dir', dir], { launch: 'node' });
        expect(await second.exited).to.equal(1);
        const taken = which === 'port' ? port : adminPort;
        const hint = which === 'port' ? 'DEMO_PORT' : 'DEMO_ADMIN_PORT';
        expect(second.output().trim()).to.equal(`demo: ${which} ${taken} is in use: stop the other demo or set ${hint} (npm run demo -- --${which === 'port' ? 'port' : 'admin-port'} N)`);
        const after = await Promise.all(names.map((name) => readFile(join(dir, name), 'utf8')));
        expect(after).to.deep.equal(before);
        const chat = await sh(lineAfter(demo.output(), '# OpenAI chat completion, routed by Host'));
        expect(chat.code, chat.stderr).to.equal(0);
      });
    }
  });

  describe('stopping', function () {
    for (const stopCase of stopCases) {
      const { launch, target, signal } = stopCase;
      const how = { npm: 'npm run demo', tsx: 'tsx scripts/demo.ts', node: 'node --import tsx scripts/demo.ts' }[launch];
      it(`${signal} to ${target} of ${how} stops every process it started and frees its ports`, async function () {
        const started = stoppable.get(stopCase);
        if (started === undefined) throw new Error('not started');
        const { demo, port, adminPort } = started;
        const chain = [demo.pid, ...descendants(demo.pid)];
        const commands = chain.map(commandLine);
        // The script, the guard, the primary and its two workers, below tsx, sh and npm as launched.
        // (The primary and its workers set process.title, which replaces their command line.)
        expect(commands.filter((line) => line.startsWith('llm-proxy: ')), commands.join('\n')).to.have.length(3);
        // The script is the guard's parent (tsx runs it in a child node process of its own).
        const guard = chain.find((pid) => commandLine(pid).includes('demo-guard.mjs'));
        const script = guard === undefined ? undefined : parentOf(guard);
        expect(commandLine(script ?? -1)).to.include('scripts/demo.ts');
        if (target === 'the demo script itself') process.kill(script ?? -1, signal);
        else if (target.startsWith('the whole')) process.kill(-demo.pid, signal);
        else process.kill(demo.pid, signal);
        await waitUntil(() => chain.every((pid) => !isAlive(pid)), 12_000, 'every demo process gone', 50).catch((err: Error) => {
          throw new Error(`${err.message}; left: ${chain.filter(isAlive).map(commandLine).join('; ')}\n${demo.output().slice(-2000)}`);
        });
        expect(await isRefused(port)).to.equal(true);
        expect(await isRefused(adminPort)).to.equal(true);
      });
    }
  });
});
