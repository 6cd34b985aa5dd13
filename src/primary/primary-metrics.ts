// /metrics: the workers' series summed over the cluster (prom-client's AggregatorRegistry asks each
// worker over IPC at scrape time, never per request) followed by the primary's own: instance health,
// reloads, workers. Instance labels are names, never keys.
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import type { InstanceHealthReport } from './health-registry.js';
import type { StoreStatus } from './rate-limit/store.js';

export interface PrimaryMetricSources {
  health(): InstanceHealthReport[];
  listeningWorkers(): number;
  restarts(): number;
  /** undefined: no shared_store configured (the series are not exported). */
  sharedStore(): StoreStatus | undefined;
}

export interface PrimaryMetrics {
  reload(result: 'ok' | 'failed'): void;
  /** The shared store became reachable (true) or out of reach (false). */
  sharedStoreTransition(up: boolean): void;
  render(): Promise<{ contentType: string; text: string }>;
}

export function createPrimaryMetrics(sources: PrimaryMetricSources): PrimaryMetrics {
  const cluster = new AggregatorRegistry();
  const own = new Registry();
  new Gauge({
    name: 'llm_proxy_instance_healthy',
    help: 'Whether an instance takes traffic now (probes, breaker and 429 cooling all allow it).',
    labelNames: ['route', 'instance'],
    registers: [own],
    collect() {
      // Rebuilt on every scrape so instances removed by a reload disappear.
      this.reset();
      for (const report of sources.health()) this.set({ route: report.route, instance: report.name }, report.available ? 1 : 0);
    },
  });
  new Gauge({
    name: 'llm_proxy_workers',
    help: 'Worker processes listening.',
    registers: [own],
    collect() {
      this.set(sources.listeningWorkers());
    },
  });
  new Counter({
    name: 'llm_proxy_worker_restarts_total',
    help: 'Workers replaced after exiting unexpectedly.',
    registers: [own],
    collect() {
      this.reset();
      this.inc(sources.restarts());
    },
  });
  const reloads = new Counter({ name: 'llm_proxy_config_reloads_total', help: 'Config reloads by result.', labelNames: ['result'], registers: [own] });
  // Both series exist from the start, so a first failure is an increase a rule can see.
  reloads.inc({ result: 'ok' }, 0);
  reloads.inc({ result: 'failed' }, 0);

  new Gauge({
    name: 'llm_proxy_shared_store_up',
    help: 'Whether the shared store (Redis) answers and limits are shared across instances (absent without shared_store).',
    registers: [own],
    collect() {
      this.reset();
      const status = sources.sharedStore();
      if (status !== undefined) this.set(status.state === 'shared' ? 1 : 0);
    },
  });
  const storeTransitions = new Counter({
    name: 'llm_proxy_shared_store_transitions_total',
    help: 'Times the shared store became unavailable (limits enforced per instance, or limited keys refused) or available again.',
    labelNames: ['to'],
    registers: [own],
  });

  return {
    reload: (result) => reloads.inc({ result }),
    sharedStoreTransition: (up) => storeTransitions.inc({ to: up ? 'available' : 'unavailable' }),
    async render() {
      const [workers, primary] = await Promise.all([cluster.clusterMetrics(), own.metrics()]);
      return { contentType: own.contentType, text: `${workers.trimEnd()}\n${primary}` };
    },
  };
}
