// A real HTTP/1.1 server that speaks enough of the OpenAI, Anthropic and Gemini APIs for tests and
// benchmarks. It is driven by `x-mock-*` request headers, because the proxy forwards headers byte for
// byte: a test talking to the proxy steers the upstream without any side channel.
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP, type AddressInfo } from 'node:net';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { constants as zlibConstants, createGzip, gzipSync } from 'node:zlib';

export interface RecordedRequest {
  method: string;
  /** Raw req.url, query included. */
  target: string;
  rawHeaders: string[];
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  receivedAt: number;
  /** Arrival order across every mock in this process; receivedAt has only millisecond resolution. */
  arrival: number;
  aborted: boolean;
  abortedAt?: number;
  /** Response body bytes as written, with the time of each write: tests compare what clients got. */
  responseChunks: { at: number; bytes: Buffer }[];
}

const credentialHeaderNames = ['authorization', 'x-api-key', 'x-goog-api-key'];

/** Every credential header the upstream received, lower-cased name and value, in arrival order. */
export function credentialsIn(recorded: RecordedRequest): [string, string][] {
  const found: [string, string][] = [];
  for (let i = 0; i < recorded.rawHeaders.length; i += 2) {
    const name = (recorded.rawHeaders[i] as string).toLowerCase();
    if (credentialHeaderNames.includes(name)) found.push([name, recorded.rawHeaders[i + 1] as string]);
  }
  return found;
}

/** What a test-set override makes the mock answer instead of its normal reply. */
export type MockOverride = { status: number; headers?: Record<string, string>; body?: unknown; gzip?: boolean } | { close: true };

export interface MockProvider {
  readonly port: number;
  readonly url: string;
  readonly requests: RecordedRequest[];
  reset(): void;
  /**
   * Steers answers by state rather than by request header: consulted for every request once its
   * body is in; `undefined` from the function (or no function) means the normal reply.
   */
  override(decide: ((request: RecordedRequest) => MockOverride | undefined) | undefined): void;
  waitForAbort(timeoutMs: number): Promise<RecordedRequest>;
  close(): Promise<void>;
}

export interface MockProviderOptions {
  tls?: { cert: string; key: string };
  host?: string;
  port?: number;
}

type JsonObject = Record<string, unknown>;
type HeaderMap = Record<string, string | string[] | undefined>;

/** What the x-mock-* headers asked for, parsed once per request. */
interface Controls {
  echo: boolean;
  status: number | undefined;
  extraHeaders: Record<string, string | string[]>;
  firstByteDelayMs: number;
  hang: boolean;
  close: boolean;
  tokens: number;
  delayMs: number;
  /** A stream's head goes out at once and its first event this much later (a model thinking). */
  firstEventDelayMs: number;
  inputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  byteChunking: boolean;
  gzip: boolean;
  /** Destroy the connection after this many stream chunks (-1: never): a provider dying mid-stream. */
  cutAfter: number;
}

/** Everything a provider format needs to render one answer. */
interface Generation {
  id: string;
  model: string;
  created: number;
  tokens: number;
  inputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  body: JsonObject;
}

type Reply =
  | { kind: 'json'; status: number; body: unknown }
  | { kind: 'stream'; contentType: string; chunks: Iterable<string> };

class ControlError extends Error {}

// Used for answers given before the control headers are known to be valid.
const defaultControls: Controls = {
  echo: false,
  status: undefined,
  extraHeaders: {},
  firstByteDelayMs: 0,
  hang: false,
  close: false,
  tokens: 5,
  delayMs: 0,
  firstEventDelayMs: 0,
  inputTokens: 10,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  byteChunking: false,
  gzip: false,
  cutAfter: -1,
};

let arrivals = 0;

// Large enough for any prompt a test sends, small enough that a runaway client cannot eat the heap.
const maxBodyBytes = 64 * 1024 * 1024;

function isRecord(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function first(headers: HeaderMap, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function intControl(headers: HeaderMap, name: string, fallback: number): number {
  const raw = first(headers, name);
  if (raw === undefined) return fallback;
  const value = Number(raw.trim());
  if (!Number.isInteger(value) || value < 0) throw new ControlError(`${name} must be a non-negative integer`);
  return value;
}

function headersControl(headers: HeaderMap): Record<string, string | string[]> {
  const raw = first(headers, 'x-mock-headers');
  if (raw === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ControlError('x-mock-headers must be a JSON object');
  }
  if (!isRecord(parsed)) throw new ControlError('x-mock-headers must be a JSON object');
  const result: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value === 'string' || typeof value === 'number') result[name] = String(value);
    else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) result[name] = value;
    else throw new ControlError(`x-mock-headers: value of ${name} must be a string, number or string array`);
  }
  return result;
}

function parseControls(headers: HeaderMap): Controls {
  const status = first(headers, 'x-mock-status');
  const statusCode = status === undefined ? undefined : intControl(headers, 'x-mock-status', 0);
  // 1xx cannot carry the error body and would confuse the HTTP parser; no test needs them.
  if (statusCode !== undefined && (statusCode < 200 || statusCode > 599)) {
    throw new ControlError('x-mock-status must be an HTTP status code from 200 to 599');
  }
  return {
    echo: first(headers, 'x-mock-echo') === '1',
    status: statusCode,
    extraHeaders: headersControl(headers),
    firstByteDelayMs: intControl(headers, 'x-mock-first-byte-delay-ms', 0),
    hang: first(headers, 'x-mock-hang') === '1',
    close: first(headers, 'x-mock-close') === '1',
    tokens: intControl(headers, 'x-mock-tokens', 5),
    delayMs: intControl(headers, 'x-mock-delay-ms', 0),
    firstEventDelayMs: intControl(headers, 'x-mock-first-event-delay-ms', 0),
    inputTokens: intControl(headers, 'x-mock-input-tokens', 10),
    cacheReadTokens: intControl(headers, 'x-mock-cache-read-tokens', 0),
    cacheWriteTokens: intControl(headers, 'x-mock-cache-write-tokens', 0),
    byteChunking: first(headers, 'x-mock-chunking') === 'byte',
    gzip: first(headers, 'x-mock-gzip') === '1',
    cutAfter: intControl(headers, 'x-mock-cut-after', -1),
  };
}

function parseJsonBody(body: Buffer): JsonObject {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    return isRecord(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

const tokenText = (i: number): string => `tok${i} `;

function fullText(tokens: number): string {
  let text = '';
  for (let i = 0; i < tokens; i++) text += tokenText(i);
  return text;
}

const sse = (event: string, data: JsonObject): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
const sseData = (data: unknown): string => `data: ${JSON.stringify(data)}\n\n`;

// ---- OpenAI chat completions -------------------------------------------------------------------

function openaiUsage(g: Generation): JsonObject {
  return {
    prompt_tokens: g.inputTokens,
    completion_tokens: g.tokens,
    total_tokens: g.inputTokens + g.tokens,
    prompt_tokens_details: { cached_tokens: g.cacheReadTokens },
  };
}

function chatCompletion(g: Generation): JsonObject {
  return {
    id: g.id,
    object: 'chat.completion',
    created: g.created,
    model: g.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: fullText(g.tokens), refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: openaiUsage(g),
    system_fingerprint: 'fp_mock',
  };
}

function* chatCompletionStream(g: Generation): Generator<string> {
  const options = g.body['stream_options'];
  const includeUsage = isRecord(options) && options['include_usage'] === true;
  const chunk = (choices: unknown[], extra: JsonObject = {}): string =>
    sseData({
      id: g.id,
      object: 'chat.completion.chunk',
      created: g.created,
      model: g.model,
      system_fingerprint: 'fp_mock',
      choices,
      // OpenAI sends `usage: null` on every chunk but the last when usage was asked for.
      ...(includeUsage ? { usage: null } : {}),
      ...extra,
    });
  const choice = (delta: JsonObject, finishReason: string | null): JsonObject => ({
    index: 0,
    delta,
    logprobs: null,
    finish_reason: finishReason,
  });
  // With zero tokens the role still has to arrive somewhere.
  if (g.tokens === 0) yield chunk([choice({ role: 'assistant', content: '' }, null)]);
  for (let i = 0; i < g.tokens; i++) {
    const delta = i === 0 ? { role: 'assistant', content: tokenText(i) } : { content: tokenText(i) };
    yield chunk([choice(delta, null)]);
  }
  yield chunk([choice({}, 'stop')]);
  if (includeUsage) yield chunk([], { usage: openaiUsage(g) });
  yield 'data: [DONE]\n\n';
}

// ---- OpenAI Responses --------------------------------------------------------------------------

function responseObject(g: Generation, status: 'in_progress' | 'completed'): JsonObject {
  const done = status === 'completed';
  return {
    id: g.id,
    object: 'response',
    created_at: g.created,
    status,
    model: g.model,
    output: done ? [responseMessage(g)] : [],
    usage: done
      ? {
          input_tokens: g.inputTokens,
          input_tokens_details: { cached_tokens: g.cacheReadTokens },
          output_tokens: g.tokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: g.inputTokens + g.tokens,
        }
      : null,
    error: null,
    incomplete_details: null,
  };
}

function responseMessage(g: Generation, text = fullText(g.tokens), status = 'completed'): JsonObject {
  const content = status === 'completed' ? [{ type: 'output_text', text, annotations: [] }] : [];
  return { type: 'message', id: `msg_${g.id}`, status, role: 'assistant', content };
}

function* responsesStream(g: Generation): Generator<string> {
  let seq = 0;
  const event = (type: string, data: JsonObject): string => sse(type, { type, sequence_number: seq++, ...data });
  const itemId = `msg_${g.id}`;
  const text = fullText(g.tokens);
  const part = (t: string): JsonObject => ({ type: 'output_text', text: t, annotations: [] });
  const at = { item_id: itemId, output_index: 0, content_index: 0 };
  yield event('response.created', { response: responseObject(g, 'in_progress') });
  yield event('response.in_progress', { response: responseObject(g, 'in_progress') });
  // The SDK's stream helper builds a snapshot and fails on a delta for an item it was never told about,
  // so the item and part announcements are not optional.
  yield event('response.output_item.added', { output_index: 0, item: responseMessage(g, '', 'in_progress') });
  yield event('response.content_part.added', { ...at, part: part('') });
  for (let i = 0; i < g.tokens; i++) {
    yield event('response.output_text.delta', { ...at, delta: tokenText(i), logprobs: [] });
  }
  yield event('response.output_text.done', { ...at, text, logprobs: [] });
  yield event('response.content_part.done', { ...at, part: part(text) });
  yield event('response.output_item.done', { output_index: 0, item: responseMessage(g) });
  yield event('response.completed', { response: responseObject(g, 'completed') });
}

// ---- Anthropic messages ------------------------------------------------------------------------

function anthropicMessage(g: Generation, outputTokens: number, streaming: boolean): JsonObject {
  return {
    id: g.id,
    type: 'message',
    role: 'assistant',
    model: g.model,
    content: streaming ? [] : [{ type: 'text', text: fullText(g.tokens) }],
    stop_reason: streaming ? null : 'end_turn',
    stop_sequence: null,
    usage: {
      input_tokens: g.inputTokens,
      output_tokens: outputTokens,
      cache_read_input_tokens: g.cacheReadTokens,
      cache_creation_input_tokens: g.cacheWriteTokens,
    },
  };
}

function* anthropicStream(g: Generation): Generator<string> {
  yield sse('message_start', { type: 'message_start', message: anthropicMessage(g, 1, true) });
  yield sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
  yield sse('ping', { type: 'ping' });
  for (let i = 0; i < g.tokens; i++) {
    const delta = { type: 'text_delta', text: tokenText(i) };
    yield sse('content_block_delta', { type: 'content_block_delta', index: 0, delta });
  }
  yield sse('content_block_stop', { type: 'content_block_stop', index: 0 });
  yield sse('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: 'end_turn', stop_sequence: null },
    // Current API versions restate the input and cache counts here as running totals: a tap that
    // added them to message_start's would count cache reads twice.
    usage: {
      input_tokens: g.inputTokens,
      cache_read_input_tokens: g.cacheReadTokens,
      cache_creation_input_tokens: g.cacheWriteTokens,
      output_tokens: g.tokens,
    },
  });
  yield sse('message_stop', { type: 'message_stop' });
}

// ---- Gemini ------------------------------------------------------------------------------------

function geminiResponse(g: Generation, text: string, outputTokens: number, finished: boolean): JsonObject {
  const usageMetadata: JsonObject = {
    promptTokenCount: g.inputTokens,
    candidatesTokenCount: outputTokens,
    totalTokenCount: g.inputTokens + outputTokens,
  };
  if (g.cacheReadTokens > 0) usageMetadata['cachedContentTokenCount'] = g.cacheReadTokens;
  const candidate: JsonObject = { content: { role: 'model', parts: [{ text }] }, index: 0 };
  if (finished) candidate['finishReason'] = 'STOP';
  return { candidates: [candidate], usageMetadata, modelVersion: g.model, responseId: g.id };
}

// Google repeats the running usage totals on every chunk; the last chunk carries finishReason, and
// @google/genai treats a stream that closes without one as dropped and reconnects.
function* geminiChunks(g: Generation): Generator<JsonObject> {
  if (g.tokens === 0) yield geminiResponse(g, '', 0, true);
  for (let i = 0; i < g.tokens; i++) yield geminiResponse(g, tokenText(i), i + 1, i === g.tokens - 1);
}

function* geminiSse(g: Generation): Generator<string> {
  for (const chunk of geminiChunks(g)) yield `data: ${JSON.stringify(chunk)}\r\n\r\n`;
}

function* geminiJsonArray(g: Generation): Generator<string> {
  let separator = '[';
  for (const chunk of geminiChunks(g)) {
    yield `${separator}${JSON.stringify(chunk)}`;
    separator = '\n,';
  }
  yield '\n]';
}

// ---- model lists (health checks) ---------------------------------------------------------------

const listedModels = ['mock-model', 'mock-model-large'];

function openaiModelList(): JsonObject {
  // One shape that both the OpenAI and the Anthropic SDKs accept.
  const data = listedModels.map((id) => ({
    id,
    object: 'model',
    type: 'model',
    created: 1700000000,
    created_at: '2024-01-01T00:00:00Z',
    owned_by: 'mock',
    display_name: id,
  }));
  return { object: 'list', data, has_more: false, first_id: listedModels[0], last_id: listedModels.at(-1) };
}

function geminiModelList(): JsonObject {
  const models = listedModels.map((id) => ({
    name: `models/${id}`,
    displayName: id,
    supportedGenerationMethods: ['generateContent', 'streamGenerateContent'],
  }));
  return { models };
}

// ---- routing -----------------------------------------------------------------------------------

interface Route {
  method: string;
  // Suffix match: the proxy may mount a provider under a prefix such as /anything/v1/chat/completions.
  pattern: RegExp;
  idPrefix: string;
  reply(g: Generation, match: RegExpExecArray, query: URLSearchParams): Reply;
}

const json = (body: unknown): Reply => ({ kind: 'json', status: 200, body });
const eventStream = (chunks: Iterable<string>): Reply => ({ kind: 'stream', contentType: 'text/event-stream', chunks });
const wantsStream = (g: Generation): boolean => g.body['stream'] === true;

const routes: Route[] = [
  {
    method: 'POST',
    pattern: /\/v1\/chat\/completions$/,
    idPrefix: 'chatcmpl-mock',
    reply: (g) => (wantsStream(g) ? eventStream(chatCompletionStream(g)) : json(chatCompletion(g))),
  },
  {
    method: 'POST',
    pattern: /\/v1\/responses$/,
    idPrefix: 'resp_mock',
    reply: (g) => (wantsStream(g) ? eventStream(responsesStream(g)) : json(responseObject(g, 'completed'))),
  },
  {
    method: 'POST',
    pattern: /\/v1\/messages$/,
    idPrefix: 'msg_mock',
    reply: (g) => (wantsStream(g) ? eventStream(anthropicStream(g)) : json(anthropicMessage(g, g.tokens, false))),
  },
  {
    method: 'POST',
    pattern: /\/(?:v1beta|v1)\/models\/([^/:]+):generateContent$/,
    idPrefix: 'mock-gemini-',
    reply: (g) => json(geminiResponse(g, fullText(g.tokens), g.tokens, true)),
  },
  {
    method: 'POST',
    pattern: /\/(?:v1beta|v1)\/models\/([^/:]+):streamGenerateContent$/,
    idPrefix: 'mock-gemini-',
    reply: (g, _match, query) =>
      query.get('alt') === 'sse'
        ? eventStream(geminiSse(g))
        : { kind: 'stream', contentType: 'application/json; charset=UTF-8', chunks: geminiJsonArray(g) },
  },
  { method: 'GET', pattern: /\/v1\/models$/, idPrefix: '', reply: () => json(openaiModelList()) },
  { method: 'GET', pattern: /\/v1beta\/models$/, idPrefix: '', reply: () => json(geminiModelList()) },
];

function errorBody(message: string, type: string): JsonObject {
  return { error: { message, type } };
}

// ---- writing -----------------------------------------------------------------------------------

/** Resolves when the socket can take more, or when it is gone (then nothing will drain). */
function writable(res: ServerResponse): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

async function writeRaw(res: ServerResponse, bytes: Buffer, byteChunking: boolean, signal: AbortSignal): Promise<void> {
  if (!byteChunking) {
    if (!res.write(bytes)) await writable(res);
    return;
  }
  for (let i = 0; i < bytes.length; i++) {
    if (signal.aborted) return;
    if (!res.write(bytes.subarray(i, i + 1))) await writable(res);
    // A turn of the event loop between bytes so each one leaves as its own TCP segment.
    await nextTurn();
  }
}

interface BodySink {
  write(chunk: Buffer): Promise<void>;
  end(): Promise<void>;
  destroy(): void;
}

function plainSink(res: ServerResponse, controls: Controls, signal: AbortSignal): BodySink {
  return {
    write: (chunk) => writeRaw(res, chunk, controls.byteChunking, signal),
    end: async () => {
      res.end();
    },
    destroy: () => {},
  };
}

// Each event is flushed with Z_SYNC_FLUSH so a client sees it decompressible at once, the way a
// streaming gzip upstream behaves; buffering until end would hide streaming bugs.
function gzipSink(res: ServerResponse, controls: Controls, signal: AbortSignal): BodySink {
  const gzip = createGzip();
  const pending: Buffer[] = [];
  gzip.on('data', (chunk: Buffer) => pending.push(chunk));
  const drainPending = (): Promise<void> =>
    writeRaw(res, Buffer.concat(pending.splice(0)), controls.byteChunking, signal);
  return {
    async write(chunk) {
      gzip.write(chunk);
      await new Promise<void>((resolve) => gzip.flush(zlibConstants.Z_SYNC_FLUSH, () => resolve()));
      // The flush callback can run before the last 'data' event of that flush is emitted.
      await nextTurn();
      await drainPending();
    },
    async end() {
      const ended = once(gzip, 'end');
      gzip.end();
      await ended;
      await drainPending();
      res.end();
    },
    destroy: () => gzip.destroy(),
  };
}

/** Waits ms, or less if the signal fires; says whether to carry on. */
async function delay(ms: number, signal: AbortSignal): Promise<boolean> {
  if (ms <= 0) return !signal.aborted;
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

function applyHeaders(res: ServerResponse, controls: Controls, defaults: Record<string, string | number>): void {
  for (const [name, value] of Object.entries(defaults)) res.setHeader(name, value);
  if (controls.gzip) res.setHeader('content-encoding', 'gzip');
  for (const [name, value] of Object.entries(controls.extraHeaders)) res.setHeader(name, value);
}

function sendJson(res: ServerResponse, controls: Controls, status: number, body: unknown): void {
  const text = Buffer.from(JSON.stringify(body));
  const payload = controls.gzip ? gzipSync(text) : text;
  applyHeaders(res, controls, { 'content-type': 'application/json', 'content-length': payload.length });
  res.writeHead(status);
  res.end(payload);
}

async function sendStream(
  res: ServerResponse,
  controls: Controls,
  reply: Extract<Reply, { kind: 'stream' }>,
  signal: AbortSignal,
): Promise<void> {
  applyHeaders(res, controls, { 'content-type': reply.contentType, 'cache-control': 'no-cache' });
  res.writeHead(200);
  res.flushHeaders();
  const sink = controls.gzip ? gzipSink(res, controls, signal) : plainSink(res, controls, signal);
  try {
    let firstChunk = true;
    let written = 0;
    for (const chunk of reply.chunks) {
      if (!(await delay(firstChunk ? controls.firstEventDelayMs : controls.delayMs, signal))) return;
      if (signal.aborted) return;
      if (written === controls.cutAfter) {
        // Let what was written leave first: destroy() drops bytes still queued in the socket.
        await delay(50, signal);
        res.socket?.destroy();
        return;
      }
      firstChunk = false;
      await sink.write(Buffer.from(chunk));
      written += 1;
    }
    if (!signal.aborted) await sink.end();
  } finally {
    if (signal.aborted) sink.destroy();
  }
}

// ---- server ------------------------------------------------------------------------------------

function readBody(req: IncomingMessage): Promise<{ body: Buffer; complete: boolean; tooLarge: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (complete: boolean, tooLarge = false): void => {
      if (settled) return;
      settled = true;
      resolve({ body: Buffer.concat(chunks), complete, tooLarge });
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        req.pause();
        settle(false, true);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => settle(true));
    req.on('error', () => settle(false));
    req.on('close', () => settle(false));
  });
}

interface AbortWaiter {
  resolve(request: RecordedRequest): void;
  reject(error: Error): void;
}

function recordWrites(res: ServerResponse, into: RecordedRequest['responseChunks']): void {
  const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  const keep = (chunk: unknown) => {
    if (typeof chunk === 'string' || chunk instanceof Uint8Array) into.push({ at: Date.now(), bytes: Buffer.from(chunk as Uint8Array) });
  };
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    keep(chunk);
    return write(chunk, ...rest);
  }) as typeof res.write;
  res.end = ((...args: unknown[]) => {
    if (typeof args[0] !== 'function') keep(args[0]);
    return end(...args);
  }) as typeof res.end;
}

export async function startMockProvider(opts: MockProviderOptions = {}): Promise<MockProvider> {
  const host = opts.host ?? '127.0.0.1';
  const requests: RecordedRequest[] = [];
  const abortWaiters = new Set<AbortWaiter>();
  const inFlight = new Set<AbortController>();
  let closing = false;
  let sequence = 0;
  let decide: ((request: RecordedRequest) => MockOverride | undefined) | undefined;

  const noteAbort = (record: RecordedRequest, recordOnce: () => void): void => {
    record.aborted = true;
    record.abortedAt = Date.now();
    recordOnce();
    for (const waiter of abortWaiters) waiter.resolve(record);
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      target: req.url ?? '/',
      rawHeaders: [...req.rawHeaders],
      headers: { ...req.headers },
      body: Buffer.alloc(0),
      receivedAt: Date.now(),
      arrival: arrivals++,
      aborted: false,
      responseChunks: [],
    };
    recordWrites(res, record.responseChunks);
    let recorded = false;
    const recordOnce = (): void => {
      if (!recorded) requests.push(record);
      recorded = true;
    };
    const lifetime = new AbortController();
    inFlight.add(lifetime);
    // Cleared when the mock itself drops the connection (x-mock-close, close()): that is not a client abort.
    let closedByUs = false;
    res.on('close', () => {
      inFlight.delete(lifetime);
      lifetime.abort();
      if (!res.writableFinished && !closedByUs && !closing) noteAbort(record, recordOnce);
    });
    const signal = lifetime.signal;

    const { body, complete, tooLarge } = await readBody(req);
    record.body = body;
    recordOnce();
    if (tooLarge) {
      res.shouldKeepAlive = false;
      sendJson(res, { ...defaultControls }, 413, errorBody('mock: request body too large', 'mock_error'));
      return;
    }
    if (!complete || signal.aborted) return;

    const forced = decide?.(record);
    if (forced !== undefined) {
      if ('close' in forced) {
        closedByUs = true;
        req.socket.destroy();
        return;
      }
      const controls = { ...defaultControls, extraHeaders: forced.headers ?? {}, gzip: forced.gzip === true };
      sendJson(res, controls, forced.status, forced.body ?? errorBody(`mock override ${forced.status}`, 'mock_error'));
      return;
    }

    let controls: Controls;
    try {
      controls = parseControls(req.headers);
    } catch (err) {
      sendJson(res, { ...defaultControls }, 400, errorBody(`mock: ${(err as Error).message}`, 'mock_error'));
      return;
    }

    if (controls.close) {
      closedByUs = true;
      req.socket.destroy();
      return;
    }
    if (controls.hang) {
      if (!signal.aborted) await once(signal, 'abort');
      return;
    }
    if (!(await delay(controls.firstByteDelayMs, signal))) return;

    if (controls.echo) {
      sendJson(res, controls, 200, {
        method: record.method,
        target: record.target,
        rawHeaders: record.rawHeaders,
        body: body.toString('utf8'),
        bodyBase64: body.toString('base64'),
      });
      return;
    }
    if (controls.status !== undefined) {
      const message = `mock error ${controls.status}`;
      sendJson(res, controls, controls.status, errorBody(message, 'mock_error'));
      return;
    }

    const url = new URL(record.target, 'http://mock.invalid');
    for (const route of routes) {
      const match = route.method === record.method ? route.pattern.exec(url.pathname) : null;
      if (!match) continue;
      const requestBody = parseJsonBody(body);
      const pathModel = match[1] === undefined ? undefined : decodeURIComponent(match[1]);
      const bodyModel = typeof requestBody['model'] === 'string' ? requestBody['model'] : undefined;
      const generation: Generation = {
        id: `${route.idPrefix}${++sequence}`,
        model: pathModel ?? bodyModel ?? 'mock-model',
        created: Math.floor(Date.now() / 1000),
        tokens: controls.tokens,
        inputTokens: controls.inputTokens,
        cacheReadTokens: controls.cacheReadTokens,
        cacheWriteTokens: controls.cacheWriteTokens,
        body: requestBody,
      };
      const reply = route.reply(generation, match, url.searchParams);
      if (reply.kind === 'json') sendJson(res, controls, reply.status, reply.body);
      else await sendStream(res, controls, reply, signal);
      return;
    }
    sendJson(res, controls, 404, { error: { message: 'mock: no such endpoint' } });
  }

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch(() => {
      // A bug in the mock must surface as a broken response, never as an unhandled rejection.
      if (!res.headersSent && !res.destroyed) {
        sendJson(res, { ...defaultControls }, 500, errorBody('mock: internal error', 'mock_error'));
      } else {
        res.destroy();
      }
    });
  };
  const server = opts.tls
    ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, listener)
    : createHttpServer(listener);

  server.listen(opts.port ?? 0, host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const url = `${opts.tls ? 'https' : 'http'}://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;

  return {
    port,
    url,
    requests,
    reset() {
      requests.length = 0;
    },
    override(next) {
      decide = next;
    },
    waitForAbort(timeoutMs) {
      const already = requests.find((r) => r.aborted);
      if (already) return Promise.resolve(already);
      return new Promise((resolve, reject) => {
        const settle = (error: Error | undefined, request?: RecordedRequest): void => {
          clearTimeout(timer);
          abortWaiters.delete(waiter);
          if (request) resolve(request);
          else reject(error);
        };
        const waiter: AbortWaiter = { resolve: (request) => settle(undefined, request), reject: (err) => settle(err) };
        const timer = setTimeout(
          () => settle(new Error(`mock provider: no aborted request within ${timeoutMs} ms`)),
          timeoutMs,
        );
        abortWaiters.add(waiter);
      });
    },
    async close() {
      closing = true;
      for (const waiter of abortWaiters) waiter.reject(new Error('mock provider closed'));
      for (const lifetime of inFlight) lifetime.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

