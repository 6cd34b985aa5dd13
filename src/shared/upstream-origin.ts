// How to reach an instance's upstream: origin URL and TLS options. Shared by the workers' pools and
// the primary's health probes, so a probe tests exactly the connection traffic would use.
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import type { InstanceSpec } from './snapshot.js';

export function upstreamOrigin(instance: InstanceSpec): string {
  const host = isIP(instance.endpoint) === 6 ? `[${instance.endpoint}]` : instance.endpoint;
  return `${instance.tls ? 'https' : 'http'}://${host}:${instance.port}`;
}

/** Pools are shared by instances that differ only in key or weight. */
export function upstreamPoolKey(instance: InstanceSpec): string {
  return `${upstreamOrigin(instance)}|h2=${instance.http2}|ca=${instance.caPem ?? ''}`;
}

export interface UpstreamTlsOptions {
  servername?: string;
  ca?: string[];
}

export function upstreamTlsOptions(instance: InstanceSpec): UpstreamTlsOptions {
  return {
    // SNI carries names only, never an IP address (RFC 6066 3).
    ...(instance.tls && isIP(instance.endpoint) === 0 ? { servername: instance.endpoint } : {}),
    // ca replaces the default trust store, so an extra CA is added to the system roots.
    ...(instance.caPem === undefined ? {} : { ca: [...rootCertificates, instance.caPem] }),
  };
}

/** `Host` sent upstream: the endpoint, with the port only when it is not the scheme's default. */
export function upstreamHostHeader(instance: InstanceSpec): string {
  const host = isIP(instance.endpoint) === 6 ? `[${instance.endpoint}]` : instance.endpoint;
  return instance.port === (instance.tls ? 443 : 80) ? host : `${host}:${instance.port}`;
}
