// The primary's connection to the shared store (Redis or Valkey): one client for commands, one for
// pub/sub, and the one verdict the rest of the primary acts on: is the store answering? A request
// never waits on this: commands fail at once while it is out of reach (no offline queue), and each
// waits at most `command_timeout`. Transitions are logged once each way and counted.
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { SharedStoreConfig } from '../../shared/config/schema.js';
import type { Logger } from '../../shared/log.js';

export type StoreAvailability = 'connecting' | 'up' | 'down';

export interface StoreEvent {
  /** recall: spare slots of a key wanted; cool: an upstream key is rate limited for `ms`. */
  t: 'recall' | 'cool';
  id: string;
  ms?: number;
  /** The instance that sent it (it ignores its own). */
  from: string;
}

export interface SharedStoreConnection {
  /** Names this process in the store (its slots, its events); new at every start. */
  readonly instanceId: string;
  readonly client: Redis;
  readonly prefix: string;
  availability(): StoreAvailability;
  /** Since when the availability is what it is (epoch ms), and what last went wrong. */
  details(): { since: number; lastError: string | undefined; outages: number };
  /** A command failed: the store may be out of reach (a ping decides at once). */
  commandFailed(err: unknown): void;
  onAvailability(handler: (availability: StoreAvailability) => void): void;
  publish(event: Omit<StoreEvent, 'from'>): void;
  onEvent(handler: (event: StoreEvent) => void): void;
  close(): Promise<void>;
}

/** Reconnects are tried this often at most, so a store that is back is used again within seconds. */
const reconnectMaxMs = 2_000;
/** A ping this often finds a cut network, which closes no socket. */
const pingEveryMs = 1_000;

/** `redis://user:secret@host:6379/0` -> `redis://user:***@host:6379/0`, for logs and /status. */
export function redactStoreUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(invalid url)';
  }
}

export function connectSharedStore(config: SharedStoreConfig, caPem: string | undefined, log: Logger, onTransition: (up: boolean) => void): SharedStoreConnection {
  const instanceId = randomUUID();
  const prefix = config.key_prefix;
  const channel = `${prefix}events`;
  const options: RedisOptions = {
    lazyConnect: false,
    connectTimeout: config.connect_timeout * 1000,
    commandTimeout: config.command_timeout * 1000,
    // Out of reach means fail now, never queue: a queued command would hold a lease ask for as
    // long as the outage lasts.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(attempt * 250, reconnectMaxMs),
    keepAlive: 10_000,
    connectionName: `llm-proxy-${process.pid}`,
    ...(caPem === undefined ? {} : { tls: { ca: caPem } }),
  };
  const client = new Redis(config.url, options);
  const subscriber = new Redis(config.url, { ...options, connectionName: `llm-proxy-${process.pid}-events` });
  const where = redactStoreUrl(config.url);

  let state: StoreAvailability = 'connecting';
  let since = Date.now();
  let lastError: string | undefined;
  let outages = 0;
  let closed = false;
  const availabilityHandlers: ((availability: StoreAvailability) => void)[] = [];
  const eventHandlers: ((event: StoreEvent) => void)[] = [];

  const become = (next: StoreAvailability, reason?: string) => {
    if (next === state || closed) return;
    const previous = state;
    state = next;
    since = Date.now();
    if (next === 'down') {
      outages += 1;
      log.warn({ store: where, reason }, 'shared store unavailable; enforcing limits without it until it is back');
      onTransition(false);
    } else if (next === 'up') {
      if (previous === 'down') log.info({ store: where }, 'shared store back; limits are shared again');
      else log.info({ store: where }, 'shared store connected');
      onTransition(true);
    }
    for (const handler of availabilityHandlers) handler(next);
  };

  // The first connection that fails is an outage as any later one is: the proxy serves regardless.
  const connectFailed = setTimeout(() => {
    if (state === 'connecting') become('down', lastError ?? 'no connection within connect_timeout');
  }, config.connect_timeout * 1000);
  connectFailed.unref();

  client.on('ready', () => {
    clearTimeout(connectFailed);
    become('up');
  });
  client.on('error', (err: Error) => {
    lastError = err.message;
  });
  client.on('close', () => {
    if (state === 'up') become('down', lastError ?? 'connection closed');
  });
  subscriber.on('error', (err: Error) => {
    lastError = err.message;
  });
  // Subscribed once the connection is ready; ioredis subscribes again by itself after a reconnect.
  subscriber.once('ready', () => {
    subscriber.subscribe(channel).catch((err: unknown) => log.warn({ reason: (err as Error).message }, 'shared store: cannot subscribe to events'));
  });
  subscriber.on('message', (_channel: string, text: string) => {
    const event = parseEvent(text);
    if (event === undefined || event.from === instanceId) return;
    for (const handler of eventHandlers) handler(event);
  });

  let pinging = false;
  const ping = async () => {
    if (pinging || closed || client.status !== 'ready') return;
    pinging = true;
    try {
      await client.ping();
      become('up');
    } catch (err) {
      lastError = (err as Error).message;
      become('down', lastError);
      // A cut network leaves the socket open and silent: start over on a fresh one.
      client.disconnect(true);
    } finally {
      pinging = false;
    }
  };
  const pinger = setInterval(() => void ping(), pingEveryMs);
  pinger.unref();

  return {
    instanceId,
    client,
    prefix,
    availability: () => state,
    details: () => ({ since, lastError, outages }),
    commandFailed(err) {
      lastError = (err as Error).message;
      void ping();
    },
    onAvailability: (handler) => void availabilityHandlers.push(handler),
    publish(event) {
      if (state !== 'up') return;
      client.publish(channel, JSON.stringify({ ...event, from: instanceId })).catch((err: unknown) => {
        lastError = (err as Error).message;
      });
    },
    onEvent: (handler) => void eventHandlers.push(handler),
    async close() {
      closed = true;
      clearInterval(pinger);
      clearTimeout(connectFailed);
      client.disconnect();
      subscriber.disconnect();
    },
  };
}

function parseEvent(text: string): StoreEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const { t, id, ms, from } = value as Record<string, unknown>;
  if ((t !== 'recall' && t !== 'cool') || typeof id !== 'string' || typeof from !== 'string') return undefined;
  if (ms !== undefined && (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0)) return undefined;
  return { t, id, from, ...(typeof ms === 'number' ? { ms } : {}) };
}
