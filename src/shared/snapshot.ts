// The routing state the primary compiles from a validated config and sends to every worker. Plain
// data (it crosses IPC as JSON); workers compile it once into their own lookup structures.
import type { ProviderType } from './config/schema.js';

export interface ClientKeySpec {
  key: string;
  /** What logs show for this key: its configured name, or a masked form. */
  label: string;
}

export interface InstanceSpec {
  /** Stable display name (never the key): endpoint plus provider and key position. */
  name: string;
  endpoint: string;
  port: number;
  tls: boolean;
  http2: boolean;
  caPem: string | undefined;
  upstreamKey: string | undefined;
  weight: number;
}

export interface RouteSpec {
  /** The provider entries' `host` value as configured: the `route` label of logs and metrics. */
  label: string;
  hostname: string;
  prefix: string;
  type: ProviderType;
  /** Keys accepted on this route besides the global ones. */
  clientKeys: ClientKeySpec[];
  /** The original enforces auth when any global key exists or any provider of the route lists auth_keys. */
  authRequired: boolean;
  instances: InstanceSpec[];
}

export interface Snapshot {
  version: number;
  loadedAt: number;
  listen: { host: string; port: number };
  tls: { cert: string; key: string; ticketKeys: string };
  timeouts: {
    connectMs: number;
    firstByteMs: number;
    idleMs: number;
    requestHeaderMs: number;
    keepAliveMs: number;
    shutdownMs: number;
  };
  limits: { maxBodyBytes: number; maxHeaderBytes: number };
  log: { level: string; format: 'json' | 'pretty' };
  globalClientKeys: ClientKeySpec[];
  routes: RouteSpec[];
}
