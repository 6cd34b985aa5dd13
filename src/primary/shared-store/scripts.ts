// The Lua scripts that keep limits in Redis. Each runs atomically in Redis, so instances taking from
// one bucket at once never read-modify-write over each other, and each reads the time from Redis
// (TIME), so the hosts' clocks need not agree. ioredis sends them by EVALSHA and falls back to EVAL
// when a restarted Redis has forgotten them.
import type { Redis } from 'ioredis';

const now = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * A per-minute token bucket (as src/primary/rate-limit/token-bucket.ts): refill, charge `debt` (the
 * level may go below zero), take up to `want`. A changed capacity moves the level by the change.
 * KEYS: bucket hash. ARGV: capacity, want, debt, estimate (0 keeps the stored one), need (the
 * retry-after is for this much), min ttl ms.
 * Returns {granted, floor(level), retryAfterMs, estimate}.
 */
const takeScript = `${now}
local cap = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'level', 'at', 'cap', 'est')
local level = tonumber(h[1])
local at = tonumber(h[2])
local was = tonumber(h[3])
local est = tonumber(h[4]) or 0
if level == nil or at == nil or was == nil then level = cap; at = now; was = cap end
if was ~= cap then level = math.min(cap, level + cap - was) end
if now > at then level = math.min(cap, level + (now - at) * cap / 60000); at = now end
level = level - tonumber(ARGV[3])
if tonumber(ARGV[4]) > 0 then est = tonumber(ARGV[4]) end
local granted = 0
if want > 0 then granted = math.max(0, math.min(want, math.floor(level))) end
level = level - granted
redis.call('HSET', KEYS[1], 'level', tostring(level), 'at', tostring(at), 'cap', tostring(cap), 'est', tostring(est))
-- Kept until it would be full again (a bucket gone quiet that long is full anyway).
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[6]), math.ceil((cap - level) * 60000 / cap) + 1000))
local short = tonumber(ARGV[5]) - granted
local retry = 0
if short > 0 and level < short then retry = math.ceil((short - level) * 60000 / cap) end
return {granted, math.floor(level), retry, math.floor(est)}`;

/** Hands tokens back. KEYS: bucket hash. ARGV: capacity, amount. */
const giveScript = `${now}
local cap = tonumber(ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(h[1])
local at = tonumber(h[2])
if level == nil or at == nil then return 0 end
if now > at then level = math.min(cap, level + (now - at) * cap / 60000); at = now end
level = math.min(cap, level + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'level', tostring(level), 'at', tostring(at))
return 1`;

// Concurrency: a hash of slots held per instance, and a sorted set of when each instance's holding
// expires unless renewed. An instance that died stops renewing; its slots are dropped at the next
// acquire after the ttl.
const dropExpired = `local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, member in ipairs(gone) do redis.call('HDEL', KEYS[1], member) end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end`;

const renewHolding = `redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
redis.call('PEXPIRE', KEYS[2], ttl * 2)`;

/**
 * KEYS: slots hash, expiry zset. ARGV: instance, want, limit, ttl ms.
 * Returns {granted, held by the other instances}.
 */
const acquireSlotsScript = `${now}
local ttl = tonumber(ARGV[4])
${dropExpired}
local total = 0
local mine = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local n = tonumber(all[i + 1]) or 0
  total = total + n
  if all[i] == ARGV[1] then mine = n end
end
local granted = math.max(0, math.min(tonumber(ARGV[2]), tonumber(ARGV[3]) - total))
if granted > 0 then
  redis.call('HINCRBY', KEYS[1], ARGV[1], granted)
  mine = mine + granted
end
if mine > 0 then
${renewHolding}
end
return {granted, total - (mine - granted)}`;

/** KEYS: slots hash, expiry zset. ARGV: instance, amount. */
const releaseSlotsScript = `local left = redis.call('HINCRBY', KEYS[1], ARGV[1], -tonumber(ARGV[2]))
if left <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return left`;

/**
 * Sets this instance's holding outright and renews its ttl: the periodic renewal, and the resync
 * after an outage (slots taken and freed meanwhile were counted here only). 0 removes it.
 * KEYS: slots hash, expiry zset. ARGV: instance, count, ttl ms.
 */
const setSlotsScript = `${now}
local ttl = tonumber(ARGV[3])
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
${renewHolding}
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1`;

type Reply = Promise<unknown>;

export interface LimitScripts {
  llmProxyTake(bucket: string, capacity: number, want: number, debt: number, estimate: number, need: number, minTtlMs: number): Reply;
  llmProxyGive(bucket: string, capacity: number, amount: number): Reply;
  llmProxyAcquireSlots(slots: string, expiry: string, instance: string, want: number, limit: number, ttlMs: number): Reply;
  llmProxyReleaseSlots(slots: string, expiry: string, instance: string, amount: number): Reply;
  llmProxySetSlots(slots: string, expiry: string, instance: string, count: number, ttlMs: number): Reply;
}

/** Registers the scripts on a client; the returned object calls them. */
export function defineLimitScripts(client: Redis): LimitScripts {
  client.defineCommand('llmProxyTake', { numberOfKeys: 1, lua: takeScript });
  client.defineCommand('llmProxyGive', { numberOfKeys: 1, lua: giveScript });
  client.defineCommand('llmProxyAcquireSlots', { numberOfKeys: 2, lua: acquireSlotsScript });
  client.defineCommand('llmProxyReleaseSlots', { numberOfKeys: 2, lua: releaseSlotsScript });
  client.defineCommand('llmProxySetSlots', { numberOfKeys: 2, lua: setSlotsScript });
  return client as unknown as LimitScripts;
}

/** Key names; the {id} hash tag keeps a key's slot hash and zset in one Redis Cluster slot. */
export function bucketKey(prefix: string, id: string, dimension: string): string {
  return `${prefix}bucket:{${id}}:${dimension}`;
}

export function slotKeys(prefix: string, id: string): [string, string] {
  return [`${prefix}slots:{${id}}`, `${prefix}slots-ttl:{${id}}`];
}

/** A script's array reply as numbers (Redis turns Lua numbers into integers). */
export function numbers(reply: unknown, length: number): number[] {
  if (!Array.isArray(reply) || reply.length < length) throw new Error('unexpected reply from a shared-store script');
  return reply.slice(0, length).map((value) => Number(value));
}
