// Active health checks (--enable-health-check): the primary probes every instance once per
// interval, all concurrently, whatever the number of workers. An instance with a `health_check`
// gets that request with its own upstream key (2xx = healthy); one without gets a TCP (and TLS)
// connect. A probe still running when the next round starts is not doubled.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Pool } from 'undici';
import type { Logger } from '../shared/log.js';
import { providerTables } from '../shared/providers/registry.js';
import type { ProviderTable } from '../shared/providers/table.js';
import type { InstanceSpec, Snapshot } from '../shared/snapshot.js';
import { upstreamHostHeader, upstreamOrigin, upstreamPoolKey, upstreamTlsOptions } from '../shared/upstream-origin.js';
import type { HealthRegistry } from './health-registry.js';

export interface HealthProber {
  /** Probes what the new snapshot lists from the next round on (new instances at once). */
  update(snapshot: Snapshot): void;
  stop(): Promise<void>;
}

interface ProbeTarget {
  spec: InstanceSpec;
  table: ProviderTable;
}

// The default probe timeout when an instance has no health_check block of its own.
const connectProbeTimeoutMs = 10_000;
// Probe answers are small; a large one is read no further.
const maxProbeBodyBytes = 64 * 1024;

export function startHealthProber(log: Logger, registry: HealthRegistry, first: Snapshot): HealthProber {
  let targets: ProbeTarget[] = [];
  let intervalMs = first.healthCheckIntervalMs;
  const inFlight = new Set<string>();
  const pools = new Map<string, Pool>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const poolFor = (spec: InstanceSpec, timeoutMs: number) => {
    const key = upstreamPoolKey(spec);
    let pool = pools.get(key);
    if (pool === undefined) {
      pool = new Pool(upstreamOrigin(spec), {
        // Unbounded: every key of an endpoint is probed at once, and a probe queued behind others
        // would spend its timeout waiting and be reported down.
        connections: null,
        allowH2: spec.http2,
        connect: { timeout: timeoutMs, ...upstreamTlsOptions(spec) },
      });
      pools.set(key, pool);
    }
    return pool;
  };

  const probe = async ({ spec, table }: ProbeTarget): Promise<void> => {
    if (inFlight.has(spec.id)) return;
    inFlight.add(spec.id);
    try {
      const error = spec.healthCheck === undefined ? await connectProbe(spec) : await requestProbe(spec, table, poolFor);
      if (!stopped) registry.probeResult(spec.id, error === undefined, error);
      if (error !== undefined) log.debug({ instance: spec.name, error }, 'health probe failed');
    } finally {
      inFlight.delete(spec.id);
    }
  };

  const round = (only?: ReadonlySet<string>) => {
    for (const target of targets) {
      if (only === undefined || only.has(target.spec.id)) void probe(target);
    }
  };

  const scheduleRounds = () => {
    clearInterval(timer);
    timer = setInterval(() => round(), intervalMs);
    timer.unref();
  };

  const setTargets = (snapshot: Snapshot) => {
    const seen = new Map<string, ProbeTarget>();
    for (const route of snapshot.routes) {
      for (const spec of route.instances) if (!seen.has(spec.id)) seen.set(spec.id, { spec, table: providerTables[route.type] });
    }
    targets = [...seen.values()];
    const keep = new Set(targets.map((target) => upstreamPoolKey(target.spec)));
    for (const [key, pool] of pools) {
      if (keep.has(key)) continue;
      pools.delete(key);
      void pool.close().catch(() => undefined);
    }
  };

  setTargets(first);
  round();
  scheduleRounds();

  return {
    update(snapshot) {
      const known = new Set(targets.map((target) => target.spec.id));
      setTargets(snapshot);
      round(new Set(targets.map((target) => target.spec.id).filter((id) => !known.has(id))));
      if (snapshot.healthCheckIntervalMs !== intervalMs) {
        intervalMs = snapshot.healthCheckIntervalMs;
        scheduleRounds();
      }
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await Promise.all([...pools.values()].map((pool) => pool.destroy().catch(() => undefined)));
      pools.clear();
    },
  };
}

/** The configured probe request; resolves with an error text, or undefined for a 2xx. */
async function requestProbe(spec: InstanceSpec, table: ProviderTable, poolFor: (spec: InstanceSpec, timeoutMs: number) => Pool): Promise<string | undefined> {
  const check = spec.healthCheck;
  if (check === undefined) return 'no health_check';
  const headers: string[] = [];
  const credentials = new Set(table.clientKeyHeaders);
  for (let i = 0; i < check.headers.length; i += 2) {
    const name = check.headers[i] as string;
    // The instance's own key replaces any credential written into the probe's headers.
    if (spec.upstreamKey !== undefined && credentials.has(name.toLowerCase())) continue;
    headers.push(name, check.headers[i + 1] as string);
  }
  headers.push('host', upstreamHostHeader(spec));
  if (spec.upstreamKey !== undefined) for (const [name, value] of table.upstreamKeyHeaders(spec.upstreamKey)) headers.push(name, value);
  const signal = AbortSignal.timeout(check.timeoutMs);
  try {
    const response = await poolFor(spec, check.timeoutMs).request({
      method: check.method as 'GET',
      path: check.path,
      headers,
      body: check.body ?? null,
      headersTimeout: check.timeoutMs,
      bodyTimeout: check.timeoutMs,
      signal,
    });
    let read = 0;
    for await (const chunk of response.body) {
      read += (chunk as Buffer).length;
      if (read > maxProbeBodyBytes) break;
    }
    if (response.statusCode >= 200 && response.statusCode < 300) return undefined;
    return `status ${response.statusCode}`;
  } catch (err) {
    if (signal.aborted) return `timed out after ${check.timeoutMs} ms`;
    return (err as { code?: string }).code ?? (err as Error).message;
  }
}

/** A TCP connect, then the TLS handshake when the upstream speaks TLS; no request is sent. */
function connectProbe(spec: InstanceSpec): Promise<string | undefined> {
  return new Promise((resolve) => {
    let socket: Socket;
    const finish = (error: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(error);
    };
    const timer = setTimeout(() => finish(`timed out after ${connectProbeTimeoutMs} ms`), connectProbeTimeoutMs);
    if (spec.tls) {
      socket = tlsConnect({ host: spec.endpoint, port: spec.port, ...upstreamTlsOptions(spec), ALPNProtocols: spec.http2 ? ['h2', 'http/1.1'] : ['http/1.1'] }, () =>
        finish(undefined),
      );
    } else {
      socket = netConnect({ host: spec.endpoint, port: spec.port }, () => finish(undefined));
    }
    socket.once('error', (err: Error & { code?: string }) => finish(err.code ?? err.message));
  });
}
