// One undici Pool per (endpoint, port, tls, ca, http2), shared by every route and kept across
// snapshots while still referenced: a reload must not drop warm upstream connections.
import { Pool } from 'undici';
import type { InstanceSpec, Snapshot } from '../shared/snapshot.js';
import { upstreamOrigin, upstreamPoolKey, upstreamTlsOptions } from '../shared/upstream-origin.js';

export interface UpstreamPools {
  poolFor(instance: InstanceSpec): Pool;
  /** Closes pools the given snapshots no longer use; close() lets their in-flight requests finish. */
  retainOnly(instances: Iterable<InstanceSpec>): void;
  destroyAll(): Promise<void>;
}

export function createUpstreamPools(timeouts: () => Snapshot['timeouts']): UpstreamPools {
  const pools = new Map<string, Pool>();
  return {
    poolFor(instance) {
      const key = upstreamPoolKey(instance);
      let pool = pools.get(key);
      if (!pool) {
        pool = createPool(instance, timeouts());
        pools.set(key, pool);
      }
      return pool;
    },
    retainOnly(instances) {
      const keep = new Set<string>();
      for (const instance of instances) keep.add(upstreamPoolKey(instance));
      for (const [key, pool] of pools) {
        if (keep.has(key)) continue;
        pools.delete(key);
        void pool.close().catch(() => undefined);
      }
    },
    async destroyAll() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map((pool) => pool.destroy().catch(() => undefined)));
    },
  };
}

function createPool(instance: InstanceSpec, timeouts: Snapshot['timeouts']): Pool {
  return new Pool(upstreamOrigin(instance), {
    // An SSE stream holds its connection for minutes; a cap here would queue requests behind it.
    connections: null,
    pipelining: 1,
    allowH2: instance.http2,
    keepAliveTimeout: 4_000,
    headersTimeout: timeouts.firstByteMs,
    bodyTimeout: timeouts.idleMs,
    connect: { timeout: timeouts.connectMs, ...upstreamTlsOptions(instance) },
  });
}
