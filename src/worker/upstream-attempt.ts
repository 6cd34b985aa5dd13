// One attempt of an exchange, as undici's handler: until the exchange decides at the response head
// it waits; then it holds the answer (for a retry, or to scrub it) or relays it with backpressure.
import type { Dispatcher } from 'undici';
import type { Downstream } from './downstream.js';
import { detachedChunk } from './detached-chunk.js';
import { ClientGoneError, ClientStalledError, HeldTooLongError } from './exchange-errors.js';
import { holdLimitBytes, type HeldAnswer, type UpstreamHeaders } from './held-answer.js';
import type { UsageTap } from './usage-tap.js';
import type { CompiledInstance, RouteTable } from './route-table.js';
import { startStreamKeepalive, type StreamKeepalive } from './stream-keepalive.js';

/** What an attempt reports to, and reads from, the exchange it belongs to. */
export interface AttemptOwner {
  readonly down: Downstream;
  readonly routeTable: RouteTable;
  readonly clientGone: boolean;
  onResponseHead(attempt: Attempt, status: number, headers: UpstreamHeaders): void;
  onHeldComplete(attempt: Attempt, held: HeldAnswer): void;
  onEnd(): void;
  onAttemptError(attempt: Attempt, err: Error): void;
}

/** The undici handler of one attempt: holds an answer for a retry or relays it to the client. */
export class Attempt implements Dispatcher.DispatchHandler {
  mode: 'waiting' | 'hold' | 'relay' = 'waiting';
  reported = false;
  eventStream = false;
  #controller: Dispatcher.DispatchController | undefined;
  #held: HeldAnswer | undefined;
  #tap: UsageTap | undefined;
  #keepalive: StreamKeepalive | undefined;
  /** Runs while the relay is paused for a client that does not read; cleared on every way out. */
  #stalled: NodeJS.Timeout | undefined;

  constructor(
    readonly exchange: AttemptOwner,
    readonly instance: CompiledInstance,
    readonly trial: boolean,
  ) {}

  hold(held: HeldAnswer): void {
    this.mode = 'hold';
    this.#held = held;
  }

  get holdsFinal(): boolean {
    return this.#held?.final === true;
  }

  relay(eventStream: boolean, tap: UsageTap | undefined): void {
    this.mode = 'relay';
    this.eventStream = eventStream;
    this.#tap = tap;
    const keepaliveMs = this.exchange.routeTable.snapshot.streamKeepaliveMs;
    if (eventStream && keepaliveMs !== undefined) this.#keepalive = startStreamKeepalive(this.exchange.down, keepaliveMs);
  }

  abort(err: Error): void {
    this.#clearStalled();
    this.#controller?.abort(err);
  }

  // The timer holds the controller and through it the whole exchange: left to run after the client
  // went away, it kept every exchange cut while paused alive for timeouts.idle.
  #clearStalled(): void {
    if (this.#stalled === undefined) return;
    clearTimeout(this.#stalled);
    this.#stalled = undefined;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.exchange.clientGone) controller.abort(new ClientGoneError());
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: UpstreamHeaders): void {
    if (statusCode < 200) return;
    this.exchange.onResponseHead(this, statusCode, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, data: Buffer): void {
    const chunk = detachedChunk(data);
    const held = this.#held;
    if (held !== undefined) {
      held.size += chunk.length;
      if (held.size > holdLimitBytes) controller.abort(new HeldTooLongError());
      else held.chunks.push(chunk);
      return;
    }
    const down = this.exchange.down;
    // Already paused: a chunk undici had read before the pause took effect goes into the buffer it
    // was meant for; one timer and one drain listener per pause, not one per chunk.
    if (!down.write(chunk) && this.#stalled === undefined) {
      controller.pause();
      // undici's body timeout sleeps while paused, so a client that never reads would hold the
      // upstream (and its memory) forever: it gets the idle timeout, as a slow upstream does.
      this.#stalled = setTimeout(() => {
        this.#stalled = undefined;
        controller.abort(new ClientStalledError());
      }, this.exchange.routeTable.snapshot.timeouts.idleMs);
      this.#stalled.unref();
      down.onceDrain(() => {
        if (this.#stalled === undefined) return;
        this.#clearStalled();
        controller.resume();
      });
    }
    this.#keepalive?.relayed(chunk);
    // After the write: the client never waits for the tap.
    this.#tap?.push(chunk);
  }

  onResponseEnd(): void {
    this.#clearStalled();
    this.#keepalive?.stop();
    const held = this.#held;
    if (held !== undefined) this.exchange.onHeldComplete(this, held);
    else this.exchange.onEnd();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#clearStalled();
    this.#keepalive?.stop();
    this.exchange.onAttemptError(this, err);
  }
}
