// HTTP/1.1 pipelining: Node's parser emits every pipelined request of a connection at once and only
// keeps the responses in order, so without this a client's POSTs would run upstream side by side.
// Requests that are not safe (RFC 9110 9.2.1) run one at a time: such a request waits until every
// earlier one on its connection has been answered, and every later one waits for it. Safe requests
// with no unsafe one ahead of them still run together.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

interface Waiting {
  readonly safe: boolean;
  readonly res: ServerResponse;
  readonly start: () => void;
}

interface ConnectionQueue {
  active: number;
  activeUnsafe: boolean;
  readonly waiting: Waiting[];
}

// Keyed by socket, so a connection that dies with requests still queued takes its queue with it.
const queues = new WeakMap<Socket, ConnectionQueue>();

function canStart(queue: ConnectionQueue, safe: boolean): boolean {
  return safe ? !queue.activeUnsafe : queue.active === 0;
}

function begin(queue: ConnectionQueue, entry: Waiting): void {
  queue.active += 1;
  if (!entry.safe) queue.activeUnsafe = true;
  // 'close' follows 'finish', i.e. the whole answer was handed to the socket (or the socket died).
  entry.res.once('close', () => {
    queue.active -= 1;
    if (!entry.safe) queue.activeUnsafe = false;
    pump(queue);
  });
  entry.start();
}

function pump(queue: ConnectionQueue): void {
  while (queue.waiting.length > 0 && canStart(queue, (queue.waiting[0] as Waiting).safe)) begin(queue, queue.waiting.shift() as Waiting);
}

/** Runs `start` for this request now, or once the requests ahead of it on its connection allow. */
export function sequenceRequest(req: IncomingMessage, res: ServerResponse, start: () => void): void {
  const socket = req.socket;
  let queue = queues.get(socket);
  if (queue === undefined) {
    queue = { active: 0, activeUnsafe: false, waiting: [] };
    queues.set(socket, queue);
  }
  const entry = { safe: safeMethods.has(req.method ?? ''), res, start };
  if (queue.waiting.length === 0 && canStart(queue, entry.safe)) begin(queue, entry);
  else queue.waiting.push(entry);
}
