// Parsers for the address-like strings of config.yml, shared by validation and snapshot building.
import { isIP } from 'node:net';

export interface RouteHost {
  /** Lower-cased host name, without port. */
  hostname: string;
  /** Path prefix without a trailing slash, '' when the route has none. */
  prefix: string;
}

const hostnamePattern = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$/;

export function isHostname(value: string): boolean {
  return hostnamePattern.test(value.toLowerCase()) || isIP(value) !== 0;
}

/** `example.com/openai/` -> { hostname: 'example.com', prefix: '/openai' } (the original's host/prefix form). */
export function parseRouteHost(host: string): RouteHost | undefined {
  const slash = host.indexOf('/');
  const name = (slash === -1 ? host : host.slice(0, slash)).toLowerCase().replace(/\.$/, '');
  const prefix = slash === -1 ? '' : host.slice(slash).replace(/\/+$/, '');
  if (!isHostname(name)) return undefined;
  if (prefix.includes('?') || prefix.includes('#') || prefix.includes('//') || /\/\.\.?(\/|$)/.test(prefix)) return undefined;
  return { hostname: name, prefix };
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** `0.0.0.0:443`, `[::]:8443`, `localhost:0`. */
export function parseListenAddress(value: string): ListenAddress | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(value);
  if (!match) return undefined;
  const port = Number(match[3]);
  const host = match[1] ?? match[2] ?? '';
  if (port > 65535) return undefined;
  if (match[1] !== undefined && isIP(host) !== 6) return undefined;
  return { host, port };
}

export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
