// `llm-proxy start` and `llm-proxy check`, with the original's flags. Usage errors exit 2, like
// clap did for the original; a bad config exits 1.
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { ConfigError } from '../shared/config/parse.js';
import { parseListenAddress } from '../shared/config/address.js';
import { loadConfig } from './load-config.js';
import { buildSnapshot } from './build-snapshot.js';
import { runPrimary } from './main.js';

function parseWorkers(value: string): number {
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1 || count > 1024) throw new InvalidArgumentError('must be a whole number from 1 to 1024');
  return count;
}

function parseListen(value: string): string {
  if (!parseListenAddress(value)) throw new InvalidArgumentError('must be ADDRESS:PORT, e.g. 0.0.0.0:8443 or [::]:443');
  return value;
}

export async function runCli(argv: string[], version: string): Promise<void> {
  const program = new Command('llm-proxy')
    .description('A high-performance reverse proxy for LLM APIs (OpenAI, Anthropic, Gemini)')
    .version(`llm-proxy ${version}`, '-V, --version')
    .exitOverride((err: CommanderError) => process.exit(err.exitCode === 0 ? 0 : 2))
    .showHelpAfterError();

  program
    .command('start')
    .description('Start the proxy server')
    .requiredOption('-c, --config <FILE>', 'Path to the config file')
    .option('--enable-health-check', 'Enable provider health check', false)
    .option('--workers <N>', 'Worker processes (overrides `workers` in the config)', parseWorkers)
    .option('--listen <ADDR:PORT>', 'TLS listen address (overrides `listen` in the config)', parseListen)
    .action(async (opts: { config: string; enableHealthCheck: boolean; workers?: number; listen?: string }) => {
      process.title = 'llm-proxy: primary';
      await runPrimary({ configFile: opts.config, enableHealthCheck: opts.enableHealthCheck, workers: opts.workers, listen: opts.listen, version });
    });

  program
    .command('check')
    .description('Validate the config file (and its certificates) without starting, like nginx -t')
    .requiredOption('-c, --config <FILE>', 'Path to the config file')
    .action(async (opts: { config: string }) => {
      try {
        const loaded = await loadConfig(opts.config);
        for (const warning of loaded.warnings) process.stderr.write(`warning: ${warning}\n`);
        const snapshot = buildSnapshot(loaded, 1, '', 1);
        const instances = snapshot.routes.reduce((sum, route) => sum + route.instances.length, 0);
        const clientKeys = new Set([...snapshot.globalClientKeys, ...snapshot.routes.flatMap((route) => route.clientKeys)].map((k) => k.key)).size;
        process.stdout.write(
          `${opts.config}: ok (${snapshot.routes.length} routes, ${instances} upstream instances, ${clientKeys} client keys, listen ${loaded.config.listen}, workers ${loaded.config.workers})\n`,
        );
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        for (const warning of err.warnings) process.stderr.write(`warning: ${warning}\n`);
        process.stderr.write(`${err.message}\n`);
        process.exit(1);
      }
    });

  await program.parseAsync(argv);
}
