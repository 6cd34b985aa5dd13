// A worker process: waits for its first snapshot, then listens and serves; later snapshots swap in
// atomically (requests already running keep the route table they started with).
import { randomBytes } from 'node:crypto';
import cluster from 'node:cluster';
import { dispatchMessage, type PrimaryMessage, type WorkerMessage } from '../shared/ipc.js';
import { createLogger, flushLog, type Logger } from '../shared/log.js';
import { limitsOf, type Snapshot } from '../shared/snapshot.js';
import { createWorkerMetrics } from './metrics.js';
import { createOutcomeReporter } from './outcome-reporter.js';
import { createBodyBudget } from './body-budget.js';
import { handleExchange, type ExchangeContext } from './proxy-exchange.js';
import { compileRouteTable } from './route-table.js';
import { createWorkerRateLimits } from './rate-limits.js';
import { createProxyServer, type ProxyServer } from './server.js';
import { createUpstreamPools } from './upstream-pools.js';
import { createWorkerHealth } from './worker-health.js';

function send(message: WorkerMessage): void {
  process.send?.(message);
}

export function runWorker(): void {
  let log: Logger | undefined;
  let proxy: ProxyServer | undefined;
  let snapshot: Snapshot | undefined;
  let draining = false;
  const pools = createUpstreamPools(() => (snapshot as Snapshot).timeouts);
  const outcomes = createOutcomeReporter(send);
  const bodyBudget = createBodyBudget();
  const metrics = createWorkerMetrics(() => bodyBudget.used);
  const health = createWorkerHealth((id) => outcomes.trial(id, 'declined'));
  const limits = createWorkerRateLimits(send);
  // Request ids: 40 random bits drawn once per process, the worker id, then a counter. Unique across
  // workers and restarts without a random draw per request; the hot path only formats the counter.
  const idPrefix = `${randomBytes(5).toString('hex')}-${(cluster.worker?.id ?? 0).toString(36)}-`;
  let counter = 0;
  const nextRequestId = () => idPrefix + (counter++).toString(36);
  const context: { -readonly [K in keyof ExchangeContext]: ExchangeContext[K] } = {
    routeTable: undefined as unknown as ExchangeContext['routeTable'],
    log: undefined as unknown as Logger,
    outcomes,
    health,
    metrics,
    limits,
    bodyBudget,
    nextRequestId,
  };

  const apply = async (next: Snapshot) => {
    if (snapshot !== undefined && next.version <= snapshot.version) return;
    snapshot = next;
    if (log === undefined) log = createLogger({ level: next.log.level, format: next.log.format, base: { worker: cluster.worker?.id } });
    else log.level = next.log.level;
    const routeTable = compileRouteTable(next, { pools, outcomes, metrics }, health);
    context.routeTable = routeTable;
    context.log = log;
    const instances = next.routes.flatMap((route) => route.instances);
    pools.retainOnly(instances);
    limits.retainOnly(limitsOf(next));
    outcomes.retainOnly(new Set(instances.map((instance) => instance.id)));
    if (proxy === undefined) {
      proxy = createProxyServer({ snapshot: next, log, onExchange: (down) => handleExchange(down, context), nextRequestId });
      try {
        const address = await proxy.listen(next.listen.host, next.listen.port, next.listen.reusePort);
        send({ type: 'llm-proxy:listening', version: next.version, address });
      } catch (err) {
        send({ type: 'llm-proxy:fatal', message: `cannot listen on ${next.listen.host}:${next.listen.port}: ${(err as Error).message}` });
        process.exitCode = 1;
        process.disconnect?.();
      }
      return;
    }
    proxy.applySnapshot(next);
    send({ type: 'llm-proxy:snapshot-applied', version: next.version });
  };

  const drain = async (deadlineMs: number) => {
    if (draining) return;
    draining = true;
    if (proxy !== undefined) {
      const how = await proxy.drain(deadlineMs);
      log?.info({ how }, 'worker drained');
    }
    outcomes.flush();
    limits.returnAll();
    await pools.destroyAll();
    if (log !== undefined) await flushLog(log);
    process.exit(0);
  };

  process.on('message', (raw) =>
    dispatchMessage<PrimaryMessage>(raw, {
      'llm-proxy:snapshot': (message) => {
        apply(message.snapshot).catch((err: unknown) => send({ type: 'llm-proxy:fatal', message: (err as Error).message }));
      },
      'llm-proxy:health': (message) => {
        if (health.update(message.health)) context.routeTable?.applyHealth(health);
      },
      'llm-proxy:shutdown': (message) => void drain(message.deadlineMs),
      'llm-proxy:lease-grant': (message) => limits.onGrant(message),
      'llm-proxy:slot-grant': (message) => limits.onGrant(message),
      'llm-proxy:slot-recall': (message) => limits.onRecall(message.id),
    }),
  );
  send({ type: 'llm-proxy:hello' });
  // Ctrl-C and systemd's default KillMode signal every process of the group: drain, do not die.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => void drain(snapshot?.timeouts.shutdownMs ?? 30_000));
  }
  // Reload is the primary's job; a worker must survive `systemctl kill -s HUP`.
  process.on('SIGHUP', () => undefined);
  // The primary went away (crashed or killed): nothing will ever route to us again.
  process.on('disconnect', () => void drain(snapshot?.timeouts.shutdownMs ?? 30_000));
}
