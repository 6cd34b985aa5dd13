// Client traffic for the cluster tests: single exchanges whose first body bytes and end can be
// awaited (a signal must land mid-stream), continuous load over HTTP/1.1 and HTTP/2 that records
// each outcome, and a probe that opens a brand-new connection on a fixed beat. Outcomes are plain
// records, so a test states what may fail and how, instead of the helper deciding.
import { randomUUID } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import type { ClientHttp2Session } from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { openH2Session } from './clients.js';

export interface Target {
  port: number;
  caPem: string;
  /** Host / :authority: picks the route. */
  host: string;
  clientKey: string;
}

export interface ExchangeSpec {
  streaming: boolean;
  /** Mock controls: tokens in the answer, and the gap between SSE chunks. */
  tokens?: number;
  delayMs?: number;
  /** Extra request headers (a marker a test looks for upstream, say). */
  headers?: Record<string, string>;
  /** Gives up (error 'timeout') after this long; a hang is a failure, not a stuck suite. */
  timeoutMs?: number;
}

export interface Outcome {
  /** Sent as x-exchange-id, so a test can ask the mock whether this exchange reached it. */
  id: string;
  protocol: 'h1' | 'h2' | 'probe';
  streaming: boolean;
  startedAt: number;
  endedAt: number;
  /** HTTP status; undefined when no response head arrived. */
  status: number | undefined;
  /** A stream ended with its `data: [DONE]`, a plain answer parsed as a completion. */
  complete: boolean;
  /** Connection-level error code; undefined when the exchange ended cleanly. */
  error: string | undefined;
  /** What arrived of the body. */
  body: string;
}

export interface Exchange {
  /** true once body bytes arrived; false if the exchange ended without any. */
  firstBytes: Promise<boolean>;
  done: Promise<Outcome>;
}

export const succeeded = (o: Outcome): boolean => o.status === 200 && o.complete && o.error === undefined;

/** One line per outcome, for assertion messages. */
export function describeOutcomes(outcomes: readonly Outcome[], limit = 10): string {
  return outcomes
    .slice(0, limit)
    .map((o) => `${o.id} ${o.protocol}${o.streaming ? ' stream' : ''} status=${o.status} complete=${o.complete} error=${o.error} t=${o.startedAt}..${o.endedAt}`)
    .join('\n');
}

function bodyFor(streaming: boolean): string {
  return JSON.stringify({ model: 'gpt-test', stream: streaming, messages: [{ role: 'user', content: 'hi' }] });
}

function headersFor(target: Target, spec: ExchangeSpec, id: string): Record<string, string> {
  return {
    'x-exchange-id': id,
    'content-type': 'application/json',
    authorization: `Bearer ${target.clientKey}`,
    'x-mock-tokens': String(spec.tokens ?? 5),
    'x-mock-delay-ms': String(spec.delayMs ?? 20),
    ...spec.headers,
  };
}

function isComplete(text: string, streaming: boolean): boolean {
  if (streaming) return text.endsWith('data: [DONE]\n\n');
  try {
    const parsed = JSON.parse(text) as { choices?: { message?: { content?: unknown } }[] };
    return typeof parsed.choices?.[0]?.message?.content === 'string';
  } catch {
    return false;
  }
}

function codeOf(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown; message?: unknown };
  const code = String(e.code ?? e.name ?? e.message ?? err);
  // Node names the HTTP/2 error code (REFUSED_STREAM, CANCEL...) only in the message.
  const h2Code = /NGHTTP2_\w+/.exec(String(e.message ?? ''))?.[0];
  return h2Code === undefined ? code : `${code} ${h2Code}`;
}

/** The stage promises of one exchange, settled by whichever transport runs it. */
function stages(protocol: Outcome['protocol'], streaming: boolean) {
  const id = randomUUID();
  const startedAt = Date.now();
  let status: number | undefined;
  const chunks: Buffer[] = [];
  let onFirstBytes!: (arrived: boolean) => void;
  const firstBytes = new Promise<boolean>((resolve) => (onFirstBytes = resolve));
  return {
    id,
    firstBytes,
    head(code: number) {
      status = code;
    },
    data(chunk: Buffer) {
      chunks.push(chunk);
      onFirstBytes(true);
    },
    finish(error: string | undefined): Outcome {
      onFirstBytes(false);
      const body = Buffer.concat(chunks).toString('utf8');
      return { id, protocol, streaming, startedAt, endedAt: Date.now(), status, complete: error === undefined && isComplete(body, streaming), error, body };
    },
  };
}

export function sendH1(agent: Agent, target: Target, spec: ExchangeSpec): Exchange {
  const s = stages('h1', spec.streaming);
  const done = (async () => {
    try {
      const res = await request(`https://127.0.0.1:${target.port}/v1/chat/completions`, {
        dispatcher: agent,
        method: 'POST',
        headers: { host: target.host, ...headersFor(target, spec, s.id) },
        body: bodyFor(spec.streaming),
        signal: AbortSignal.timeout(spec.timeoutMs ?? 15_000),
      });
      s.head(res.statusCode);
      await new Promise<void>((resolve, reject) => {
        res.body.on('data', (chunk: Buffer) => s.data(chunk));
        res.body.once('end', resolve);
        res.body.once('error', reject);
      });
      return s.finish(undefined);
    } catch (err) {
      return s.finish(codeOf(err));
    }
  })();
  return { firstBytes: s.firstBytes, done };
}

export function sendH2(session: ClientHttp2Session, target: Target, spec: ExchangeSpec): Exchange {
  const s = stages('h2', spec.streaming);
  const done = new Promise<Outcome>((resolve) => {
    let settled = false;
    const settle = (error: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(s.finish(error));
    };
    const timer = setTimeout(() => {
      stream?.close();
      settle('timeout');
    }, spec.timeoutMs ?? 15_000);
    let stream: ReturnType<ClientHttp2Session['request']> | undefined;
    try {
      stream = session.request({ ':method': 'POST', ':path': '/v1/chat/completions', ':authority': target.host, ...headersFor(target, spec, s.id) });
    } catch (err) {
      settle(codeOf(err));
      return;
    }
    stream.on('response', (headers) => s.head(Number(headers[':status'])));
    stream.on('data', (chunk: Buffer) => s.data(chunk));
    let ended = false;
    stream.once('end', () => (ended = true));
    stream.once('error', (err) => settle(codeOf(err)));
    // Node emits neither 'error' for a stream reset with CANCEL nor for one torn down with its
    // session, and may still emit 'end': only a close with NO_ERROR after 'end' is a clean end.
    stream.once('close', () => {
      const rst = stream?.rstCode ?? 0;
      settle(rst !== 0 ? `reset (${rst})` : ended ? undefined : 'closed before end');
    });
    stream.end(bodyFor(spec.streaming));
  });
  return { firstBytes: s.firstBytes, done };
}

export function createAgent(caPem: string, connections?: number): Agent {
  return new Agent({ connect: { ca: caPem, servername: 'localhost' }, ...(connections === undefined ? {} : { connections }) });
}

/** An HTTP/2 session that is reopened when the one it had closed (GOAWAY) or broke. */
export class H2Slot {
  #session: ClientHttp2Session | undefined;
  #opening: Promise<ClientHttp2Session> | undefined;
  readonly opened: ClientHttp2Session[] = [];

  constructor(private readonly target: () => Target) {}

  get(): Promise<ClientHttp2Session> {
    const current = this.#session;
    if (current && !current.closed && !current.destroyed) return Promise.resolve(current);
    this.#opening ??= openH2Session(this.target().caPem, this.target().port)
      .then((session) => {
        // openH2Session stops listening for errors once connected; a reset later must not crash the test.
        session.on('error', () => undefined);
        this.#session = session;
        this.opened.push(session);
        return session;
      })
      .finally(() => (this.#opening = undefined));
    return this.#opening;
  }

  close(): void {
    for (const session of this.opened) if (!session.destroyed) session.close();
  }
}

export interface LoadOptions {
  /** Concurrent HTTP/1.1 loops, each on its own connection of one agent. */
  h1Connections: number;
  h2Sessions: number;
  /** Concurrent loops per HTTP/2 session. */
  loopsPerSession: number;
  tokens?: number;
  delayMs?: number;
  /** Pause between two exchanges of one loop: steady load, not a flood a 2-core VM chokes on. */
  pauseMs?: number;
}

export interface Load {
  readonly outcomes: Outcome[];
  failures(): Outcome[];
  /** Lets the exchanges under way finish, then closes every connection. */
  stop(): Promise<void>;
}

/** Exchanges in a loop, alternating streamed and plain; a broken connection is replaced and the loop goes on. */
export function startLoad(target: () => Target, options: LoadOptions): Load {
  const outcomes: Outcome[] = [];
  let stopped = false;
  const agent = createAgent(target().caPem, options.h1Connections);
  const slots = Array.from({ length: options.h2Sessions }, () => new H2Slot(target));
  const spec = (streaming: boolean): ExchangeSpec => ({ streaming, tokens: options.tokens ?? 5, delayMs: options.delayMs ?? 20 });

  const loop = async (index: number, send: (streaming: boolean) => Promise<Outcome>) => {
    let streaming = index % 2 === 0;
    while (!stopped) {
      outcomes.push(await send(streaming));
      streaming = !streaming;
      await sleep(options.pauseMs ?? 10);
    }
  };
  const h2Send = async (slot: H2Slot, streaming: boolean): Promise<Outcome> => {
    const startedAt = Date.now();
    let session: ClientHttp2Session;
    try {
      session = await slot.get();
    } catch (err) {
      return { id: randomUUID(), protocol: 'h2', streaming, startedAt, endedAt: Date.now(), status: undefined, complete: false, error: `connect: ${codeOf(err)}`, body: '' };
    }
    return sendH2(session, target(), spec(streaming)).done;
  };

  const loops: Promise<void>[] = [];
  for (let i = 0; i < options.h1Connections; i++) loops.push(loop(i, (streaming) => sendH1(agent, target(), spec(streaming)).done));
  slots.forEach((slot, s) => {
    for (let i = 0; i < options.loopsPerSession; i++) loops.push(loop(s + i, (streaming) => h2Send(slot, streaming)));
  });

  return {
    outcomes,
    failures: () => outcomes.filter((o) => !succeeded(o)),
    async stop() {
      stopped = true;
      await Promise.all(loops);
      for (const slot of slots) slot.close();
      await agent.close();
    },
  };
}

export interface Probe {
  readonly outcomes: Outcome[];
  stop(): Promise<void>;
}

/** Every `everyMs`, a GET on a brand-new TLS connection (no agent, no session reuse). */
export function startProbe(target: Target, everyMs = 50): Probe {
  const outcomes: Outcome[] = [];
  const running = new Set<Promise<void>>();
  const probeOnce = () =>
    new Promise<Outcome>((resolve) => {
      const id = randomUUID();
      const startedAt = Date.now();
      let status: number | undefined;
      const finish = (error: string | undefined, body = '') =>
        resolve({ id, protocol: 'probe', streaming: false, startedAt, endedAt: Date.now(), status, complete: error === undefined && status === 200, error, body });
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: target.port,
          ca: target.caPem,
          servername: 'localhost',
          agent: false,
          path: '/v1/models',
          headers: { host: target.host, authorization: `Bearer ${target.clientKey}`, 'x-exchange-id': id },
          timeout: 3_000,
        },
        (res) => {
          status = res.statusCode;
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.once('end', () => finish(undefined, Buffer.concat(chunks).toString('utf8')));
          res.once('error', (err) => finish(codeOf(err)));
        },
      );
      req.once('timeout', () => req.destroy(Object.assign(new Error('probe timed out'), { code: 'timeout' })));
      req.once('error', (err) => finish(codeOf(err)));
      req.end();
    });
  const timer = setInterval(() => {
    const run = probeOnce().then((outcome) => {
      outcomes.push(outcome);
      running.delete(run);
    });
    running.add(run);
  }, everyMs);
  return {
    outcomes,
    async stop() {
      clearInterval(timer);
      await Promise.all(running);
    },
  };
}
