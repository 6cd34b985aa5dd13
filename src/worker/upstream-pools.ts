// One undici Pool per (endpoint, port, tls, ca, http2, keep_alive), shared by every route and kept
// across snapshots while still referenced: a reload must not drop warm upstream connections.
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
      const key = poolKey(instance);
      let pool = pools.get(key);
      if (!pool) {
        pool = createPool(instance, timeouts());
        pools.set(key, pool);
      }
      return pool;
    },
    retainOnly(instances) {
      const keep = new Set<string>();
      for (const instance of instances) keep.add(poolKey(instance));
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

/** Providers that differ only in `keep_alive` cannot share a pool: the idle lifetime is the pool's. */
function poolKey(instance: InstanceSpec): string {
  return `${upstreamPoolKey(instance)}|ka=${instance.keepAliveMs}`;
}

function createPool(instance: InstanceSpec, timeouts: Snapshot['timeouts']): Pool {
  return new Pool(upstreamOrigin(instance), {
    // An SSE stream holds its connection for minutes; a cap here would queue requests behind it.
    connections: null,
    pipelining: 1,
    allowH2: instance.http2,
    // undici's 4 s default makes a route quiet for a few seconds pay a new TCP and TLS handshake.
    // A Keep-Alive: timeout=N hint from the upstream shortens it (to N minus undici's 2 s margin,
    // for the race with the upstream closing first), never lengthens it past keep_alive.
    keepAliveTimeout: instance.keepAliveMs,
    keepAliveMaxTimeout: instance.keepAliveMs,
    headersTimeout: timeouts.firstByteMs,
    bodyTimeout: timeouts.idleMs,
    connect: { timeout: timeouts.connectMs, ...upstreamTlsOptions(instance) },
  });
}
