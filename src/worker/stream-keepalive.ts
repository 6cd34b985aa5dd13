// `stream_keepalive` (issue 15): a reasoning model can stay silent for minutes after the response
// head, and the load balancers in front of us (60 to 100 s idle timeouts are common) then cut the
// connection. After that long without upstream bytes on an event stream the client gets an SSE
// comment line, which every SSE parser skips (WHATWG HTML 9.2.6: a line starting with ':').
import type { Downstream } from './downstream.js';

const LF = 0x0a;
const CR = 0x0d;
// Between events a whole (empty) event, so a client that splits on blank lines sees one too; inside
// an event only the comment line, since a blank line there would end the upstream's event early.
const betweenEvents = Buffer.from(': keep-alive\n\n');
const insideEvent = Buffer.from(': keep-alive\n');

/** Where the relayed bytes stand in the SSE grammar: a comment may go only at a line start. */
export type SsePosition = 'event-start' | 'line-start' | 'mid-line';

export interface StreamKeepalive {
  /** The upstream's `chunk` was relayed: the silence starts again. */
  relayed(chunk: Buffer): void;
  stop(): void;
}

/**
 * Arms one timer for the stream; a chunk only notes the time and the position (the last three
 * bytes), so the relay does no timer work per chunk.
 */
export function startStreamKeepalive(down: Downstream, intervalMs: number, now: () => number = () => performance.now()): StreamKeepalive {
  let position: SsePosition = 'event-start';
  let lastAt = now();
  let timer: NodeJS.Timeout | undefined;
  const arm = (ms: number) => {
    timer = setTimeout(fire, ms);
    timer.unref();
  };
  const fire = () => {
    timer = undefined;
    if (down.gone) return;
    const silentMs = now() - lastAt;
    // Timers may fire a fraction of a millisecond early against performance.now().
    if (silentMs + 1 < intervalMs) return arm(intervalMs - silentMs);
    // Mid-line the upstream paused inside a line of its own: nothing may go in between. Checked
    // again one interval later, when its line may have ended.
    if (position !== 'mid-line') {
      down.write(position === 'event-start' ? betweenEvents : insideEvent);
      lastAt = now();
    }
    arm(intervalMs);
  };
  arm(intervalMs);
  return {
    relayed(chunk) {
      lastAt = now();
      position = positionAfter(chunk, position);
    },
    stop() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}

/** The position after `chunk`; only '\n' counts as a line end (a lone '\r' may be half of '\r\n'). */
export function positionAfter(chunk: Buffer, before: SsePosition): SsePosition {
  const last = chunk.length - 1;
  if (last < 0) return before;
  if (chunk[last] !== LF) return 'mid-line';
  let previous = last - 1;
  if (previous >= 0 && chunk[previous] === CR) previous -= 1;
  // The line just ended is empty (an event ended) when a line end comes right before it.
  if (previous < 0) return before === 'mid-line' ? 'line-start' : 'event-start';
  return chunk[previous] === LF ? 'event-start' : 'line-start';
}
