// The primary process: loads and validates the config, starts the workers, owns health (active
// probes and the circuit breaker), reloads on SIGHUP and drains on SIGTERM/SIGINT. It never proxies
// traffic itself.
import { resolve } from 'node:path';
import { ConfigError } from '../shared/config/parse.js';
import type { SharedStoreConfig } from '../shared/config/schema.js';
import { formatHostPort } from '../shared/config/address.js';
import { createLogger, flushLog, type Logger } from '../shared/log.js';
import type { Snapshot } from '../shared/snapshot.js';
import { startAdminServer, type AdminServer } from './admin-server.js';
import { buildSnapshot, type SnapshotOverrides } from './build-snapshot.js';
import { createConfigLoader, type ConfigLoader } from './config-thread.js';
import { explainWorkerCount } from './cpu-count.js';
import type { HealthProber } from './health-prober.js';
import { createHealthRegistry } from './health-registry.js';
import { createTicketKeys, loadConfig, type LoadedConfig } from './load-config.js';
import { createPrimaryMetrics } from './primary-metrics.js';
import { createRateLimiter } from './rate-limit/limiter.js';
import { createMemoryStore, type RateLimitStore } from './rate-limit/store.js';
import type { SharedStoreConnection } from './shared-store/connection.js';
import { buildStatus } from './status-report.js';
import { createSupervisor, type Supervisor } from './supervisor.js';

export interface StartOptions {
  configFile: string;
  enableHealthCheck: boolean;
  workers: number | undefined;
  listen: string | undefined;
  /** package.json version, shown on /status. */
  version: string;
}

/** What the control plane has done since start; read by /status and the metrics. */
export interface ControlStats {
  reloads: { ok: number; failed: number };
  lastReloadError: string | undefined;
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
  const configPath = resolve(options.configFile);
  log.info({ version: options.version, config: configPath, node: process.version }, 'starting');
  for (const warning of loaded.warnings) log.warn({ warning }, 'config warning');

  const overrides: SnapshotOverrides = options.listen === undefined ? {} : { listen: options.listen };
  const ticketKeys = createTicketKeys();
  const workerSetting = options.workers ?? config.workers;
  const { count: workerCount, from: workersFrom } = await explainWorkerCount(workerSetting);
  log.info({ workers: workerCount, from: options.workers !== undefined ? '--workers' : workersFrom }, 'worker count');
  let snapshot: Snapshot = buildSnapshot(loaded, 1, ticketKeys, workerCount, overrides);
  logRoutes(log, snapshot);
  const stats: ControlStats = { reloads: { ok: 0, failed: 0 }, lastReloadError: undefined };

  const sharedConfig = config.shared_store;
  let connection: SharedStoreConnection | undefined;
  let store: RateLimitStore = createMemoryStore();
  if (sharedConfig !== undefined) {
    // Loaded only here: one host with limits in memory does not pay for the Redis client at start.
    const [{ connectSharedStore }, { createRedisStore }] = await Promise.all([import('./shared-store/connection.js'), import('./rate-limit/redis-store.js')]);
    const caPem = sharedConfig.ca_file === undefined ? undefined : loaded.caPems.get(sharedConfig.ca_file);
    connection = connectSharedStore(sharedConfig, caPem, log, (up) => metrics.sharedStoreTransition(up));
    store = createRedisStore({ connection, onUnavailable: sharedConfig.on_unavailable, url: sharedConfig.url, slotTtlMs: sharedConfig.slot_ttl * 1000, log });
  }
  const limiter = createRateLimiter(store, log, (workerId, message) => supervisor.sendTo(workerId, message));
  await limiter.configure(snapshot);
  const registry = createHealthRegistry({
    log,
    workerIds: () => supervisor.liveIds(),
    onChange: () => supervisor.sendHealth(),
  });
  const supervisor = createSupervisor({
    log,
    healthTable: (workerId) => registry.tableFor(workerId),
    onHealthReport: (report, workerId) => {
      if (report.type === 'llm-proxy:outcomes') registry.outcomes(report.counts);
      else if (report.type === 'llm-proxy:cool') {
        // The quota behind an upstream key is the provider's, whichever instance of ours hit it.
        if (registry.cool(report.id, report.ms)) connection?.publish({ t: 'cool', id: registry.quotaOf(report.id) ?? '', ms: report.ms });
      }
      else registry.trial(report.id, report.result, workerId);
    },
    onLimitMessage: (message, workerId, reply) => limiter.onMessage(message, workerId, reply),
    onWorkerGone: (workerId) => {
      registry.workerGone(workerId);
      limiter.workerGone(workerId);
    },
  });
  registry.sync(snapshot);
  connection?.onEvent((event) => {
    if (event.t === 'cool' && event.ms !== undefined) registry.coolQuota(event.id, event.ms);
  });

  const metrics = createPrimaryMetrics({
    sharedStore: () => (sharedConfig === undefined ? undefined : limiter.storeStatus()),
    health: () => registry.report(),
    listeningWorkers: () => supervisor.workers().filter((worker) => worker.listening && !worker.retiring).length,
    restarts: () => supervisor.restarts,
  });
  const startedAt = Date.now();
  let started = false;
  const routes = {
    '/healthz': () => ({ status: 200, body: { status: 'alive' } }),
    '/readyz': () => {
      const reason = unreadiness(started, shuttingDown, snapshot, supervisor);
      return reason === undefined ? { status: 200, body: { ready: true } } : { status: 503, body: { ready: false, reason } };
    },
    '/metrics': async () => ({ status: 200, ...(await metrics.render()) }),
    '/status': async () => ({
      status: 200,
      body: buildStatus({
        rateLimits: await limiter.states(),
        sharedStore: limiter.storeStatus(),
        version: options.version,
        startedAt,
        healthChecks: options.enableHealthCheck,
        snapshot: () => snapshot,
        reloads: () => ({ ...stats.reloads, lastError: stats.lastReloadError }),
        workers: () => supervisor.workers(),
        restarts: () => supervisor.restarts,
        health: () => registry.report(),
      }),
    }),
  };
  let admin: AdminServer | undefined;
  if (snapshot.admin !== undefined) {
    try {
      admin = await startAdminServer(snapshot.admin.host, snapshot.admin.port, routes, log);
      log.info({ admin: formatHostPort(admin.address.host, admin.address.port) }, 'admin listening');
    } catch (err) {
      log.fatal({ reason: (err as Error).message, admin: formatHostPort(snapshot.admin.host, snapshot.admin.port) }, 'admin listener could not start');
      await flushLog(log);
      process.exit(1);
    }
  }
  const prober: HealthProber | undefined = options.enableHealthCheck ? (await import('./health-prober.js')).startHealthProber(log, registry, snapshot) : undefined;

  let shuttingDown = false;
  const shutdown = (signal: string) => {
    if (shuttingDown) {
      log.warn({ signal }, 'second signal, exiting now');
      supervisor.killAll();
      // At once, as asked: the exit hook writes what is still queued synchronously.
      process.exit(1);
    }
    shuttingDown = true;
    log.info({ signal, deadlineMs: snapshot.timeouts.shutdownMs }, 'shutting down, draining workers');
    registry.stop();
    void Promise.all([prober?.stop(), supervisor.shutdown(snapshot.timeouts.shutdownMs)]).then(async () => {
      await limiter.close();
      log.info('stopped');
      await flushLog(log);
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  const countReload = (error: string | undefined) => {
    if (error === undefined) stats.reloads.ok += 1;
    else stats.reloads.failed += 1;
    stats.lastReloadError = error;
    metrics.reload(error === undefined ? 'ok' : 'failed');
  };

  const configLoader = createConfigLoader();
  const reload = async () => {
    const loadedNext = await loadNext(configLoader, options, log, snapshot.version + 1, ticketKeys, overrides);
    if ('error' in loadedNext) return countReload(loadedNext.error);
    const next = loadedNext.snapshot;
    if (shuttingDown) return;
    if (JSON.stringify(loadedNext.sharedStore) !== JSON.stringify(sharedConfig)) {
      log.warn('shared_store changed: it takes effect at the next start; the running store is kept');
    }
    const rebinding = next.listen.host !== snapshot.listen.host || next.listen.port !== snapshot.listen.port;
    if (rebinding) {
      try {
        const address = await supervisor.rebind(next, next.workers);
        log.info({ listen: formatHostPort(address.host, address.port) }, 'listening on the new address, draining the old workers');
      } catch (err) {
        countReload((err as Error).message);
        log.error({ reason: (err as Error).message }, 'config reload failed, keeping the running config');
        return;
      }
    }
    const previous = snapshot;
    snapshot = next;
    admin = await moveAdmin(admin, previous, next, routes, log);
    log.level = next.log.level;
    registry.sync(next);
    // Before the workers see the new limits, so their first asks meet buckets of the new size.
    await limiter.configure(next);
    prober?.update(next);
    if (!rebinding) {
      if (next.workers !== previous.workers) supervisor.resize(next.workers);
      await supervisor.broadcast(next);
    }
    countReload(undefined);
    log.info({ configVersion: next.version, routes: next.routes.length, workers: next.workers }, 'config applied');
  };

  // Reloads run one at a time in signal order; a burst of SIGHUPs is a queue, never a race.
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    if (shuttingDown) return;
    log.info('SIGHUP: reloading the config');
    reloading = reloading.then(reload).catch((err: unknown) => {
      countReload((err as Error).message);
      log.error({ reason: (err as Error).message }, 'config reload failed, keeping the running config');
    });
  });

  try {
    const address = await supervisor.start(snapshot, workerCount);
    if (shuttingDown) return;
    log.info(
      {
        version: options.version,
        config: configPath,
        listen: formatHostPort(address.host, address.port),
        workers: workerCount,
        accept: snapshot.listen.reusePort ? 'workers' : 'primary',
        routes: snapshot.routes.length,
        configVersion: snapshot.version,
        healthChecks: options.enableHealthCheck,
        admin: admin === undefined ? false : formatHostPort(admin.address.host, admin.address.port),
      },
      'ready',
    );
    started = true;
  } catch (err) {
    // SIGTERM while the workers started: they were told to drain, not failed; shutdown() exits 0.
    if (shuttingDown) return;
    log.fatal({ reason: (err as Error).message }, 'workers could not start');
    supervisor.killAll();
    await flushLog(log);
    process.exit(1);
  }
}

/** Startup lines beyond this many routes would bury the rest of the log: the others are counted. */
const loggedRoutesAtStart = 20;

/** One line per route at startup (host, provider type, instance count, auth), then how many were left out. */
function logRoutes(log: Logger, snapshot: Snapshot): void {
  const routes = snapshot.routes;
  for (const route of routes.slice(0, loggedRoutesAtStart)) {
    log.info({ route: route.label, type: route.type, instances: route.instances.length, auth: route.authRequired }, 'route');
  }
  if (routes.length > loggedRoutesAtStart) log.info({ more: routes.length - loggedRoutesAtStart, routes: routes.length }, `and ${routes.length - loggedRoutesAtStart} more routes`);
}

/** Why /readyz says 503, or undefined when every wanted worker listens on a loaded config. */
function unreadiness(started: boolean, shuttingDown: boolean, snapshot: Snapshot, supervisor: Supervisor): string | undefined {
  if (shuttingDown) return 'shutting down';
  if (!started) return 'workers starting';
  const serving = supervisor.workers().filter((worker) => !worker.retiring);
  const listening = serving.filter((worker) => worker.listening).length;
  if (listening < snapshot.workers) return `${listening} of ${snapshot.workers} workers listening`;
  return undefined;
}

/** Follows a changed admin.listen; a new address that cannot be bound keeps the old listener. */
async function moveAdmin(
  admin: AdminServer | undefined,
  previous: Snapshot,
  next: Snapshot,
  routes: Parameters<typeof startAdminServer>[2],
  log: Logger,
): Promise<AdminServer | undefined> {
  const same = previous.admin?.host === next.admin?.host && previous.admin?.port === next.admin?.port;
  if (same) return admin;
  if (next.admin === undefined) {
    await admin?.close();
    log.info('admin listener turned off');
    return undefined;
  }
  try {
    const moved = await startAdminServer(next.admin.host, next.admin.port, routes, log);
    await admin?.close();
    log.info({ admin: formatHostPort(moved.address.host, moved.address.port) }, 'admin listening');
    return moved;
  } catch (err) {
    log.error({ reason: (err as Error).message }, 'admin listener cannot move to the new address; keeping the old one');
    return admin;
  }
}

/** Reads and validates the config again (in a thread); the error (logged already) when it cannot be used. */
async function loadNext(
  loader: ConfigLoader,
  options: StartOptions,
  log: Logger,
  version: number,
  ticketKeys: string,
  overrides: SnapshotOverrides,
): Promise<{ snapshot: Snapshot; sharedStore: SharedStoreConfig | undefined } | { error: string }> {
  const result = await loader.load({ configFile: options.configFile, version, ticketKeys, workers: options.workers, overrides });
  if (!result.ok) {
    log.error({ reason: result.error, issues: result.issues }, 'config reload failed, keeping the running config');
    return { error: result.error };
  }
  for (const warning of result.warnings) log.warn({ warning }, 'config warning');
  return { snapshot: result.snapshot, sharedStore: result.sharedStore };
}
