// The usage tap's share of what one exchange holds (issue 15): OpenAI and Gemini restate usage, so the
// tap keeps the latest usage-bearing document (and the one before, in case the latest was cut short).
// Two Responses API `response.completed` events of most of a MiB each must not both be held.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect } from 'chai';
import { providerTables } from '../../src/shared/providers/registry.js';
import { createUsageTap, type UsageTap } from '../../src/worker/usage-tap.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const completed = (output: number) =>
  `event: response.completed\ndata: ${JSON.stringify({ type: 'response.completed', response: { output_text: 'x'.repeat(700_000), usage: { input_tokens: 10, output_tokens: output } } })}\n\n`;

function openaiTap(): UsageTap {
  const tap = createUsageTap(providerTables.openai.usage, { 'content-type': 'text/event-stream' }, true);
  if (tap === undefined) throw new Error('no tap');
  return tap;
}

function finished(tap: UsageTap): number | undefined {
  let output: number | undefined;
  tap.finish((usage) => (output = usage?.output));
  return output;
}

describe('usage tap: bounded memory for large usage documents', function () {
  it('lets go of an older large usage document once a newer one arrives', async function () {
    const tap = openaiTap();
    // The memory, not the view: the tap keeps views into the chunk's ArrayBuffer.
    let first: WeakRef<ArrayBufferLike>;
    (() => {
      const chunk = Buffer.from(completed(1));
      first = new WeakRef(chunk.buffer);
      tap.push(chunk);
    })();
    tap.push(Buffer.from(completed(2)));
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(first!.deref(), 'the first event is still held').to.equal(undefined);
    expect(finished(tap)).to.equal(2);
  });

  it('still falls back to the older document when the stream is cut inside the latest', function () {
    const tap = openaiTap();
    tap.push(Buffer.from(completed(1)));
    const cut = completed(2);
    tap.push(Buffer.from(cut.slice(0, cut.length - 200)));
    expect(finished(tap)).to.equal(1);
  });

  it('small restated usage keeps the latest complete one', function () {
    const tap = openaiTap();
    const chunk = (n: number) => `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 1, completion_tokens: n } })}\n\n`;
    tap.push(Buffer.from(chunk(1) + chunk(2) + chunk(3).slice(0, 30)));
    expect(finished(tap)).to.equal(2);
  });
});

describe('usage tap: a non-streamed JSON answer is never held whole (issue 17)', function () {
  it('keeps only the last chunks of a 1 MiB answer and still reads its usage', async function () {
    const tap = createUsageTap(providerTables.openai.usage, { 'content-type': 'application/json' }, false);
    if (tap === undefined) throw new Error('no tap');
    const body = Buffer.from(JSON.stringify({ choices: [{ message: { content: 'x'.repeat(1000 * 1024) } }], usage: { prompt_tokens: 3, completion_tokens: 9 } }));
    const chunkBytes = 64 * 1024;
    // Under the old cap of 1 MiB the tap held every chunk until the end, then parsed them whole.
    let first: WeakRef<ArrayBufferLike>;
    (() => {
      const chunk = Buffer.from(body.subarray(0, chunkBytes));
      first = new WeakRef(chunk.buffer);
      tap.push(chunk);
    })();
    for (let at = chunkBytes; at < body.length; at += chunkBytes) tap.push(Buffer.from(body.subarray(at, at + chunkBytes)));
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(first!.deref(), 'the first chunk is still held').to.equal(undefined);
    expect(finished(tap)).to.equal(9);
  });
});
