// Polls a condition that has no event to wait on (a mock's request count, a process count).
import { setTimeout as sleep } from 'node:timers/promises';

export async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 25): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}
