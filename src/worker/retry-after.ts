// How long an upstream asked us to wait, from `retry-after-ms` (OpenAI) or `retry-after` (seconds or
// an HTTP date, RFC 9110 10.2.3). Capped: a bogus header must not bench a key for days.
type Headers = Record<string, string | string[] | undefined>;

const maxWaitMs = 60 * 60 * 1000;

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Milliseconds to wait, or 0 when the answer named none (or one that cannot be read). */
export function retryAfterMs(headers: Headers, now = Date.now()): number {
  const ms = Number(single(headers['retry-after-ms']) ?? Number.NaN);
  if (Number.isFinite(ms) && ms > 0) return Math.min(maxWaitMs, Math.ceil(ms));
  const raw = single(headers['retry-after'])?.trim();
  if (raw === undefined || raw === '') return 0;
  if (/^\d+(\.\d+)?$/.test(raw)) return Math.min(maxWaitMs, Math.ceil(Number(raw) * 1000));
  const at = Date.parse(raw);
  return Number.isNaN(at) || at <= now ? 0 : Math.min(maxWaitMs, at - now);
}
