// The primary process: loads and validates the config, starts the workers, reloads on SIGHUP and
// drains on SIGTERM/SIGINT. It never proxies traffic itself.
import { ConfigError } from '../shared/config/parse.js';
import { formatHostPort } from '../shared/config/address.js';
import { createLogger, type Logger } from '../shared/log.js';
import type { Snapshot } from '../shared/snapshot.js';
import { buildSnapshot, type SnapshotOverrides } from './build-snapshot.js';
import { resolveWorkerCount } from './cpu-count.js';
import { createTicketKeys, loadConfig, type LoadedConfig } from './load-config.js';
import { createSupervisor } from './supervisor.js';

export interface StartOptions {
  configFile: string;
  enableHealthCheck: boolean;
  workers: number | undefined;
  listen: string | undefined;
}

export async function runPrimary(options: StartOptions): Promise<void> {
  let loaded: LoadedConfig;
  try {
    loaded = await loadConfig(options.configFile);
  } catch (err) {
    if (err instanceof ConfigError) for (const warning of err.warnings) process.stderr.write(`warning: ${warning}\n`);
    process.stderr.write(`llm-proxy: invalid configuration\n${(err as Error).message}\n`);
    process.exit(1);
  }
  const { config } = loaded;
  const log = createLogger({ level: config.log.level, format: config.log.format, base: { role: 'primary' } });
  for (const warning of loaded.warnings) log.warn({ warning }, 'config warning');

  const overrides: SnapshotOverrides = options.listen === undefined ? {} : { listen: options.listen };
  const ticketKeys = createTicketKeys();
  let version = 1;
  let snapshot: Snapshot = buildSnapshot(loaded, version, ticketKeys, overrides);
  const workerCount = await resolveWorkerCount(options.workers ?? config.workers);
  const supervisor = createSupervisor(log);

  if (options.enableHealthCheck) {
    log.warn('--enable-health-check: active health checks are not part of this build yet; every instance is treated as healthy');
  }

  let shuttingDown = false;
  const shutdown = (signal: string) => {
    if (shuttingDown) {
      log.warn({ signal }, 'second signal, exiting now');
      supervisor.killAll();
      log.flush();
      process.exit(1);
    }
    shuttingDown = true;
    log.info({ signal, deadlineMs: snapshot.timeouts.shutdownMs }, 'shutting down, draining workers');
    void supervisor.shutdown(snapshot.timeouts.shutdownMs).then(() => {
      log.info('stopped');
      log.flush();
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(async () => {
      const next = await reload(options.configFile, log, version + 1, ticketKeys, overrides, snapshot);
      if (next === undefined) return;
      version = next.version;
      snapshot = next;
      supervisor.broadcast(next);
    });
  });

  try {
    const address = await supervisor.start(snapshot, workerCount);
    log.info(
      { listen: formatHostPort(address.host, address.port), workers: workerCount, routes: snapshot.routes.length, configVersion: version },
      'ready',
    );
  } catch (err) {
    log.fatal({ reason: (err as Error).message }, 'workers could not start');
    supervisor.killAll();
    log.flush();
    process.exit(1);
  }
}

async function reload(
  file: string,
  log: Logger,
  version: number,
  ticketKeys: string,
  overrides: SnapshotOverrides,
  current: Snapshot,
): Promise<Snapshot | undefined> {
  try {
    const loaded = await loadConfig(file);
    for (const warning of loaded.warnings) log.warn({ warning }, 'config warning');
    const next = buildSnapshot(loaded, version, ticketKeys, overrides);
    if (next.listen.host !== current.listen.host || next.listen.port !== current.listen.port) {
      log.warn({ listen: formatHostPort(next.listen.host, next.listen.port) }, 'listen address changes need a restart; keeping the old one');
      next.listen = current.listen;
    }
    log.info({ configVersion: version, routes: next.routes.length }, 'config reloaded');
    return next;
  } catch (err) {
    const issues = err instanceof ConfigError ? err.issues.length : 1;
    log.error({ reason: (err as Error).message, issues }, 'config reload failed, keeping the running config');
    return undefined;
  }
}
