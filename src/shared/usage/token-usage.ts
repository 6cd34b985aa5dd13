// Token counts of one response, in four disjoint kinds so that their sum is what was billed and no
// token is counted twice: `input` excludes what was read from or written to the prompt cache, even
// where a provider reports its prompt total with the cached part inside it (OpenAI, Gemini).
export interface TokenUsage {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
}

export function emptyUsage(): TokenUsage {
  return { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };
}

export function totalTokens(usage: TokenUsage): number {
  return usage.input + usage.output + usage.cacheRead + usage.cacheWrite;
}

export type JsonRecord = Record<string, unknown>;

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A token count as reported: a non-negative finite number, else 0 (upstream JSON is not trusted). */
export function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}

/** Whether `record` reports the field at all (a count of 0 is a report; a missing field is not). */
export function has(record: JsonRecord, field: string): boolean {
  return typeof record[field] === 'number';
}

/** How one provider type reports usage; each provider table has one. */
export interface UsageFormat {
  /** The JSON key whose object value carries usage: a document without one is never parsed. */
  readonly key: string;
  /**
   * Every document with usage restates all of it (the last one wins), as OpenAI's final chunk and
   * Gemini's running totals do; otherwise documents are folded one after the other (Anthropic).
   */
  readonly lastWins: boolean;
  /** Folds the usage a parsed document reports into `into`; false when it reports none. */
  read(document: unknown, into: TokenUsage): boolean;
  /**
   * The same for the value of `key` itself, as the tail of an object body yields it: wrapping it in
   * a document with a computed key cost a runtime call per response.
   */
  readUsage(reported: unknown, into: TokenUsage): boolean;
  /** The model a request asked for, from its upstream path or its body; undefined when it names none. */
  model(path: string, body: Buffer | null): string | undefined;
  /** The most output a request body declares (max-output-tokens.ts); undefined when it declares none. */
  maxOutputTokens(body: Buffer | null): number | undefined;
  /**
   * Keys whose string values in a response are generated text, each counted once: what a response
   * that reports no usage is charged by (estimate.ts). Keys that restate earlier text are left out.
   */
  readonly textKeys: readonly string[];
}
