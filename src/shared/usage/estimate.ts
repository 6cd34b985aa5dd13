// What a request of a key with tokens_per_minute reserves before it is sent, and what it is charged
// when its response does not report its usage (an OpenAI stream without stream_options.include_usage,
// a stream cut short). Both rules live here and nowhere else; docs/rate-limits.md states them.
import { totalTokens, type TokenUsage } from './token-usage.js';

// Tokens are not counted here (that would need each model's tokenizer): a byte estimate is taken
// instead. About four bytes of English text make a token in the GPT and Claude tokenizers; code and
// JSON run a little shorter per token, other scripts longer, so this is an estimate, not a bill.
const bytesPerToken = 4;

export function tokensOfBytes(bytes: number): number {
  return Math.ceil(bytes / bytesPerToken);
}

/** What is known of a request's tokens before it is sent. */
export interface RequestTokens {
  /** The prompt's estimate: the request body's bytes / 4 (JSON syntax and any base64 media included). */
  readonly prompt: number;
  /** The most the request lets the model generate (`max_tokens` and the like); undefined: it set none. */
  readonly maxOutput: number | undefined;
}

export function requestTokens(body: Buffer | null, maxOutput: number | undefined): RequestTokens {
  return { prompt: tokensOfBytes(body === null ? 0 : body.length), maxOutput };
}

/**
 * What one request reserves from the key's bucket: its prompt plus the output it declared, else its
 * prompt or the key's running average cost (`average`), whichever is larger; at least 1 and at most
 * the limit, so that a request declaring more than a minute's worth is still admitted, once the whole
 * minute's budget is there. `request` undefined (nothing known yet) reserves the average.
 */
export function reservedTokens(request: RequestTokens | undefined, average: number, limit: number): number {
  let wanted = average;
  if (request !== undefined) wanted = request.maxOutput === undefined ? Math.max(request.prompt, average) : request.prompt + request.maxOutput;
  return Math.max(1, Math.min(limit, wanted));
}

/** What became of a response, as far as its charge depends on it. */
export interface ResponseSeen {
  /** A 2xx answer was relayed. An error answer (the upstream's or the proxy's) generated nothing. */
  readonly answered: boolean;
  /** It was relayed to its end, not cut by the client or the upstream. */
  readonly complete: boolean;
  /** The usage it reported, if any. */
  readonly usage: TokenUsage | undefined;
  /** Bytes of generated text it relayed (each provider table's `textKeys`). */
  readonly textBytes: number;
}

/**
 * The tokens a response costs its key. Reported usage of a whole response is charged as reported.
 * Otherwise the charge is estimated, and never zero: the prompt's estimate plus the text relayed / 4
 * (no more than the output the request declared, which the provider enforces), and for a whole
 * response that reported nothing at least what it declared (prompt + max output, capped at the limit,
 * which is what it reserved), as the providers' own limiters count a request. A cut response is
 * charged what it relayed, or what it reported before the cut if that is more. The key's average is
 * used to reserve but never to charge: were it a floor, every charge would be at least the average
 * and the average could only grow.
 */
export function chargedTokens(request: RequestTokens, seen: ResponseSeen, limit: number): number {
  if (!seen.answered) return 0;
  if (seen.complete && seen.usage !== undefined) return totalTokens(seen.usage);
  const reported = seen.usage === undefined ? 0 : totalTokens(seen.usage);
  const relayed = tokensOfBytes(seen.textBytes);
  const output = request.maxOutput === undefined ? relayed : Math.min(relayed, request.maxOutput);
  const declared = seen.complete && request.maxOutput !== undefined ? Math.min(limit, request.prompt + request.maxOutput) : 0;
  return Math.max(1, reported, request.prompt + output, declared);
}
