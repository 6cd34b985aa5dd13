// S7's event stamps: the mock opens every event's JSON with the wall-clock time it wrote the event,
// and the SSE client reads it back, so a gap between two events can be split into the part the
// mock made (its timers, its own stalls) and the part the path to the client added.

const prefix = 'data: {"sent_ms":';
const prefixBytes = Buffer.from(prefix);

/** How many opening bytes of an event the client must keep to read its stamp. */
export const stampRoom = prefixBytes.length + 24;

/** The event `data: {...}\n\n` with the time now put first in its object. */
export function stampEvent(event: string): string {
  // Wall clock, not performance.now(): the mock and the client are different processes.
  return `${prefix}${(performance.timeOrigin + performance.now()).toFixed(3)},${event.slice('data: {'.length)}`;
}

/** The stamp in an event's first `length` bytes, or NaN when it has none (such as [DONE]). */
export function stampOf(head: Buffer, length: number): number {
  if (length <= prefixBytes.length || head.compare(prefixBytes, 0, prefixBytes.length, 0, prefixBytes.length) !== 0) return Number.NaN;
  let end = prefixBytes.length;
  while (end < length && head[end] !== 0x2c) end += 1;
  if (end === length) return Number.NaN;
  return Number(head.toString('latin1', prefixBytes.length, end));
}
