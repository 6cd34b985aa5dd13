// Reading a request body whole (it is kept for failover), under the size limit, the idle timeout
// and the worker's budget for buffered bytes.
import type { Readable } from 'node:stream';
import type { BodyBudget } from './body-budget.js';

/** 'over_budget': the worker's buffer budget is spent (what was read of the body is given back). */
export type BodyResult = Buffer | null | 'too_large' | 'timeout' | 'over_budget' | Error;

/** What a request body is read under. A Buffer result keeps its bytes taken from `budget`. */
export interface BodyReadLimits {
  readonly maxBytes: number;
  /** The client sent nothing for this long: 'timeout' (HTTP/2 has no request timeout of its own). */
  readonly idleMs: number;
  readonly budget: BodyBudget;
  readonly budgetBytes: number;
}

export function readAll(source: Readable, limits: BodyReadLimits, owner: { bytesIn: number }, done: (result: BodyResult) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const idle = setTimeout(() => finish('timeout'), limits.idleMs);
  const finish = (result: BodyResult) => {
    if (finished) return;
    finished = true;
    clearTimeout(idle);
    // Only a whole body stays held (and counted); a refused or broken one is dropped here.
    if (!Buffer.isBuffer(result)) {
      limits.budget.give(size);
      chunks.length = 0;
    }
    source.off('data', onData);
    source.off('end', onEnd);
    source.off('error', onError);
    source.off('close', onClose);
    done(result);
  };
  const onData = (chunk: Buffer) => {
    idle.refresh();
    owner.bytesIn = size + chunk.length;
    if (size + chunk.length > limits.maxBytes) {
      source.pause();
      finish('too_large');
      return;
    }
    if (!limits.budget.take(chunk.length, limits.budgetBytes)) {
      source.pause();
      finish('over_budget');
      return;
    }
    size += chunk.length;
    chunks.push(chunk);
  };
  const onEnd = () => finish(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
  const onError = (err: Error) => finish(err);
  const onClose = () => finish(new Error('client closed the request before its body ended'));
  source.on('data', onData);
  source.on('end', onEnd);
  source.on('error', onError);
  source.on('close', onClose);
}
