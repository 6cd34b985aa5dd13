// The one definition of config.yml: zod gives both the parsed TypeScript type and the JSON Schema
// published for editors (scripts/write-schema.ts). Field names and meanings follow the Rust
// original; additions are the ones DESIGN section 3 lists.
import { z } from 'zod';
import { isHostname, parseListenAddress, parseRouteHost } from './address.js';

const positiveWeight = z
  .number({ error: 'must be a finite number greater than 0' })
  .positive({ error: 'must be a finite number greater than 0' })
  .describe('Relative share of traffic; must be finite and > 0.');

const seconds = (def: number, what: string) =>
  z
    .number({ error: 'must be a number of seconds greater than 0' })
    .positive({ error: 'must be a number of seconds greater than 0' })
    .default(def)
    .describe(`${what} (seconds, default ${def}).`);

const nonEmpty = (what: string) => z.string({ error: `must be a string (${what})` }).min(1, { error: `must not be empty (${what})`, abort: true });

export const providerTypes = ['openai', 'anthropic', 'gemini'] as const;

const defaultRetryStatuses = [429, 502, 503, 504] as const;

const limitError = 'must be a whole number greater than 0';
const limitValue = (what: string) =>
  z.number({ error: limitError }).int({ error: limitError }).min(1, { error: limitError }).optional().describe(what);

const rateLimit = z
  .strictObject({
    requests_per_minute: limitValue('Requests a minute, cluster-wide; a full minute of them may come at once.'),
    tokens_per_minute: limitValue('Tokens a minute (input, output and cached, as the upstream reports them), cluster-wide.'),
    concurrent: limitValue('Requests (streams included) in flight at once, cluster-wide.'),
  })
  .refine((limit) => limit.requests_per_minute !== undefined || limit.tokens_per_minute !== undefined || limit.concurrent !== undefined, {
    error: 'must set at least one of requests_per_minute, tokens_per_minute, concurrent',
  })
  .describe('Limits of this client key, held across all workers.');

const clientKeyEntry = z.union(
  [
    nonEmpty('client key'),
    z.strictObject({
      key: nonEmpty('client key'),
      name: z.string().min(1).optional().describe('Shown in logs, metrics and /status instead of the key fingerprint (key:xxxxxxxx).'),
      rate_limit: rateLimit.optional(),
    }),
  ],
  { error: 'must be a key string or an object {key, name, rate_limit}' },
);

const authKeys = z.array(clientKeyEntry, { error: 'must be a list of client keys' });

const healthCheck = z.strictObject({
  method: z.string().min(1).default('GET').describe('HTTP method of the probe (default GET).'),
  // A regex, not .startsWith(): zod publishes startsWith as `format: "starts_with"`, which strict
  // JSON Schema validators reject as an unknown format.
  path: nonEmpty('request path of the probe, e.g. /v1/models').regex(/^\//, { error: 'must start with /' }),
  body: z.string().optional().describe('Request body of the probe.'),
  headers: z
    .array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+:.*$/, { error: 'must look like "Name: value"' }))
    .optional()
    .describe('Extra headers, each "Name: value".'),
  timeout: seconds(10, 'Probe timeout'),
  healthy_threshold: z.number().int().min(1).default(1).describe('Successes before an unhealthy instance is used again.'),
  unhealthy_threshold: z.number().int().min(1).default(1).describe('Failures before a healthy instance is taken out.'),
});

const provider = z.strictObject({
  type: z.enum(providerTypes, { error: `must be one of ${providerTypes.join(', ')}` }),
  host: nonEmpty('the Host clients use, optionally with a /path prefix')
    .refine((host) => parseRouteHost(host) !== undefined, { error: (issue) => `"${String(issue.input)}" is not a host name with an optional /path prefix` })
    .describe(
    'Host (and optional /path prefix) clients send; providers with the same host form one route.',
  ),
  endpoint: nonEmpty('upstream host name or IP, without scheme or port')
    .refine(isHostname, {
      error: (issue) => `"${String(issue.input)}" must be a bare host name or IP address (no scheme, port or path; use port: for the port)`,
    })
    .describe('Upstream host name or IP address (no scheme, no port).'),
  port: z
    .number()
    .int({ error: 'must be a port number 1-65535' })
    .min(1, { error: 'must be a port number 1-65535' })
    .max(65535, { error: 'must be a port number 1-65535' }).optional().describe('Upstream port (default 443 with tls, 80 without).'),
  tls: z.boolean({ error: 'must be true or false' }).default(true).describe('TLS to the upstream (default true).'),
  weight: positiveWeight.optional(),
  api_key: z
    .union([nonEmpty('upstream key'), z.array(nonEmpty('upstream key'))], { error: 'must be a key string or a list of key strings' })
    .optional()
    .describe('Upstream key, or a list of keys sharing the provider weight.'),
  api_keys: z
    .array(z.strictObject({ key: nonEmpty('upstream key'), weight: positiveWeight.optional() }), {
      error: 'must be a list of {key, weight}',
    })
    .optional()
    .describe('Weighted upstream keys.'),
  auth_keys: authKeys.optional().describe('Client keys accepted for this route only, in addition to the global ones.'),
  health_check: healthCheck.optional(),
  ca_file: nonEmpty('path of a PEM CA bundle').optional().describe('Extra CA trusted for this upstream (default: system roots).'),
  http2: z.boolean().default(false).describe('Speak HTTP/2 to this upstream (default false).'),
  keep_alive: seconds(60, "Idle lifetime of upstream connections, capped by the upstream's Keep-Alive timeout hint"),
});

const listenAddress = z
  .string({ error: 'must be "address:port"' })
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, { error: 'must be "address:port", e.g. 0.0.0.0:443 or [::]:443', abort: true })
  .refine((value) => parseListenAddress(value) !== undefined, { error: 'port must be 0-65535 (and a [bracketed] address must be IPv6)' });

/** The URL forms ioredis takes: redis:// or rediss://, optional user:password@, host, port, /db. */
function redisUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL; expected redis://[user:password@]host[:port][/db] or rediss://...';
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return `scheme must be redis:// or rediss:// (TLS), not ${url.protocol}//`;
  if (url.hostname === '') return 'names no host';
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d{1,2}$/.test(url.pathname)) return `path must be a database number (/0 to /99), not ${url.pathname}`;
  if (url.search !== '' || url.hash !== '') return 'must not carry a query or fragment';
  return undefined;
}

const sharedStore = z
  .strictObject({
    url: z
      .string({ error: 'must be a redis:// or rediss:// URL' })
      .superRefine((value, ctx) => {
        const problem = redisUrlProblem(value);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      })
      .describe('Redis or Valkey: redis://[user:password@]host[:port][/db], rediss:// for TLS.'),
    key_prefix: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[\x21-\x7e]+$/, { error: 'must be printable ASCII without spaces' })
      .default('llm-proxy:')
      .describe('Prefix of every key and channel this proxy uses in Redis (default "llm-proxy:"); proxies that share limits use the same one.'),
    connect_timeout: seconds(2, 'Longest wait for a connection to Redis'),
    command_timeout: seconds(0.5, 'Longest wait for one Redis answer before the store counts as out of reach'),
    slot_ttl: seconds(10, 'How long the concurrency slots of an instance that stopped renewing them (it died) still count; renewed every third of it'),
    on_unavailable: z
      .enum(['local', 'reject'], { error: 'must be local or reject' })
      .default('local')
      .describe('Redis out of reach: local = each instance enforces the limits by itself; reject = limited keys get 503 until it is back.'),
    ca_file: nonEmpty('path of a PEM CA bundle').optional().describe('CA trusted for a rediss:// server (default: system roots).'),
  })
  .describe('Limits and upstream 429 cooling shared by every llm-proxy instance using this Redis; absent = in memory, per instance.');

const workersError = 'must be "auto" or a whole number from 1 to 1024';

export const configSchema = z
  .strictObject({
    cert_file: nonEmpty('path of the PEM certificate chain'),
    private_key_file: nonEmpty('path of the PEM private key'),
    auth_keys: authKeys.default([]).describe('Client keys accepted on every route.'),
    health_check_interval: z.number().min(0, { error: 'must be a number of seconds ≥ 0' }).default(60).describe('Seconds between active health-check rounds (default 60; 0 means one round a second).'),
    providers: z.array(provider, { error: 'must be a list of providers' }),
    listen: listenAddress.default('0.0.0.0:443').describe('Address of the TLS listener.'),
    workers: z
      .union([z.literal('auto'), z.number().int({ error: workersError }).min(1, { error: workersError }).max(1024, { error: workersError })], {
        error: workersError,
      })
      .default('auto')
      .describe('Worker processes; auto = the cgroup CPU quota, else the available cores.'),
    admin: z
      .strictObject({
        listen: z.union([listenAddress, z.literal(false)], { error: 'must be "address:port" or false' }).default('127.0.0.1:9090'),
      })
      .default({ listen: '127.0.0.1:9090' }),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        // auto: pretty when stdout is a terminal, JSON lines otherwise (a pipe, a file, journald).
        format: z.enum(['auto', 'json', 'pretty']).default('auto'),
      })
      .default({ level: 'info', format: 'auto' }),
    timeouts: z
      .strictObject({
        connect: seconds(10, 'Upstream connect timeout'),
        first_byte: seconds(600, 'Longest wait for the upstream response headers'),
        idle: seconds(300, 'Longest gap between two body chunks, either direction'),
        request_header: seconds(30, 'Longest time a client may take to send its request head'),
        keep_alive: seconds(60, 'Idle client connection lifetime'),
        shutdown: seconds(30, 'Drain deadline on SIGTERM'),
      })
      .default({ connect: 10, first_byte: 600, idle: 300, request_header: 30, keep_alive: 60, shutdown: 30 }),
    retries: z
      .strictObject({
        attempts: z
          .number()
          .int({ error: 'must be a whole number from 0 to 10' })
          .min(0, { error: 'must be a whole number from 0 to 10' })
          .max(10, { error: 'must be a whole number from 0 to 10' })
          .default(2)
          .describe('Further attempts on another instance of the route after a failure before any response byte (default 2; 0 turns failover off).'),
        on: z
          .array(z.number().int().min(400, { error: 'must be an HTTP status from 400 to 599' }).max(599, { error: 'must be an HTTP status from 400 to 599' }), {
            error: 'must be a list of HTTP statuses',
          })
          .default([...defaultRetryStatuses])
          .describe('Upstream statuses that fail over (default 429, 502, 503, 504); connect errors and timeouts before the headers always do.'),
      })
      .default({ attempts: 2, on: [...defaultRetryStatuses] }),
    circuit_breaker: z
      .strictObject({
        consecutive_failures: z
          .number()
          .int({ error: 'must be a whole number ≥ 0' })
          .min(0, { error: 'must be a whole number ≥ 0' })
          .default(5)
          .describe('Failures in a row (connect errors, timeouts, 5xx, 401/403 to an upstream key of ours) that take an instance out (default 5; 0 turns the breaker off).'),
        cooldown: seconds(30, 'How long an ejected instance rests before one trial request is let through'),
      })
      .default({ consecutive_failures: 5, cooldown: 30 }),
    shared_store: sharedStore.optional(),
    stream_keepalive: z
      .number({ error: 'must be a number of seconds greater than 0' })
      .positive({ error: 'must be a number of seconds greater than 0' })
      .optional()
      .describe('Seconds of upstream silence on an event stream after which an SSE comment line (": keep-alive") is sent (default: off).'),
    limits: z
      .strictObject({
        max_body_bytes: z.number().int().positive().default(32 * 1024 * 1024).describe('Larger request bodies get 413.'),
        max_header_bytes: z.number().int().min(1024).max(1024 * 1024).default(32 * 1024).describe('Larger request heads get 431.'),
        // 8 bodies of the largest size, or thousands of ordinary prompts: a worker that holds this much
        // still has its heap and socket buffers to spare, and one client cannot take the whole of it.
        max_buffered_bytes: z
          .number()
          .int()
          .positive()
          .default(256 * 1024 * 1024)
          .describe('Request body bytes one worker holds at once over all requests in flight (default 256 MiB); beyond it requests get 503 with Retry-After.'),
      })
      // A body the budget could never hold would get 503 on every retry: a config mistake, said now.
      .refine((limits) => limits.max_buffered_bytes >= limits.max_body_bytes, {
        error: 'must be at least limits.max_body_bytes (a body of that size could never be held)',
        path: ['max_buffered_bytes'],
      })
      .default({ max_body_bytes: 32 * 1024 * 1024, max_header_bytes: 32 * 1024, max_buffered_bytes: 256 * 1024 * 1024 }),
  })
  .describe('llm-proxy configuration (config.yml)');

export type Config = z.output<typeof configSchema>;
export type ProviderConfig = Config['providers'][number];
export type ClientKeyEntry = z.output<typeof clientKeyEntry>;
export type RateLimitConfig = z.output<typeof rateLimit>;
export type SharedStoreConfig = z.output<typeof sharedStore>;
export type ProviderType = (typeof providerTypes)[number];
