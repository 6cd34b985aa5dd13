// `llm-proxy start` and `llm-proxy check`, with the original's flags, and `llm-proxy cert` for trials.
// Usage errors exit 2, like clap did for the original; a bad config (or a cert that cannot be
// written) exits 1.
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { parseListenAddress } from '../shared/config/address.js';
import { CertificateFilesExistError, certificateSummary, writeLocalCertificates } from './cert-command.js';
import { defaultCertificateHosts, parseCertificateHost } from '../shared/local-ca.js';

function parseWorkers(value: string): number {
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1 || count > 1024) throw new InvalidArgumentError('must be a whole number from 1 to 1024');
  return count;
}

function parseListen(value: string): string {
  if (!parseListenAddress(value)) throw new InvalidArgumentError('must be ADDRESS:PORT, e.g. 0.0.0.0:8443 or [::]:443');
  return value;
}

function collectHost(value: string, previous: string[] | undefined): string[] {
  const host = parseCertificateHost(value);
  if (host === undefined) throw new InvalidArgumentError(`"${value}" is not a DNS name (a leading *. is allowed) or an IP address`);
  return [...(previous ?? []), host];
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
      // Loaded here, not at the top, as check's modules are in its own action: `cert`, --help and
      // --version do not pay for the primary (Redis client, metrics, cluster) or the config schema.
      const { runPrimary } = await import('./main.js');
      await runPrimary({ configFile: opts.config, enableHealthCheck: opts.enableHealthCheck, workers: opts.workers, listen: opts.listen, version });
    });

  program
    .command('check')
    .description('Validate the config file (and its certificates) without starting, like nginx -t')
    .requiredOption('-c, --config <FILE>', 'Path to the config file')
    .action(async (opts: { config: string }) => {
      const [{ ConfigError }, { loadConfig }, { buildSnapshot }] = await Promise.all([import('../shared/config/parse.js'), import('./load-config.js'), import('./build-snapshot.js')]);
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

  program
    .command('cert')
    .description('Write a local CA and a server certificate it signs, for trying the proxy out (self-signed: not for production)')
    .requiredOption('--out <DIR>', 'Directory to write ca.pem, ca-key.pem, cert.pem and key.pem into (created if missing)')
    .option('--host <NAME...>', `DNS name or IP address the certificate is valid for; repeatable (default: ${defaultCertificateHosts.join(' ')})`, collectHost)
    .option('--force', 'Overwrite files that exist already', false)
    .addHelpText('after', '\nExample:\n  llm-proxy cert --out ./certs --host localhost --host proxy.internal\n  curl --cacert ./certs/ca.pem https://proxy.internal/...')
    .action(async (opts: { out: string; host?: string[]; force: boolean }) => {
      try {
        const written = await writeLocalCertificates(opts.out, [...new Set(opts.host ?? defaultCertificateHosts)], { force: opts.force });
        process.stdout.write(certificateSummary(written));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (!(err instanceof CertificateFilesExistError) && typeof code !== 'string') throw err;
        process.stderr.write(`llm-proxy cert: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });

  await program.parseAsync(argv);
}
