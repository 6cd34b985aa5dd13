// The pieces of the usage tap that see raw bytes: the SSE parser, the JSON document splitter, the
// byte-level key searches and the request-body model reader. Every stream is also fed split at every
// byte, since a provider's chunking is arbitrary.
import { expect } from 'chai';
import { JsonDocuments, tailBytes } from '../../src/shared/usage/json-documents.js';
import { hasObjectKey, mayHaveObjectKeyInLines, StringValueCounter, stringValueBytes } from '../../src/shared/usage/json-key.js';
import { topLevelObjectValue } from '../../src/shared/usage/json-tail.js';
import { createTopLevelStringReader } from '../../src/shared/usage/model-name.js';

const readModel = createTopLevelStringReader('model');
import { SseParser } from '../../src/shared/usage/sse-parser.js';

type Event = [string, string];

function sseEvents(pieces: Buffer[], maxEventBytes = 1024 * 1024, unwanted?: (chunk: Buffer) => boolean): Event[] {
  const events: Event[] = [];
  const parser = new SseParser((event, data) => events.push([event, data.toString('utf8')]), maxEventBytes, unwanted);
  for (const piece of pieces) parser.push(piece);
  parser.finish();
  return events;
}

/** The text as one chunk, as single bytes, and split in two at every position. */
function splits(text: string | Buffer): Buffer[][] {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const ways: Buffer[][] = [[bytes], [...bytes].map((byte) => Buffer.from([byte]))];
  for (let at = 1; at < bytes.length; at++) ways.push([bytes.subarray(0, at), bytes.subarray(at)]);
  return ways;
}

describe('SSE parser', function () {
  it('finds events, names and multi-line data the same way at every split, with LF, CRLF and lone CR', function () {
    const expected: Event[] = [
      ['', '{"a":1}'],
      ['message_start', 'line one\nline two'],
      ['', 'ü€😀'],
    ];
    for (const eol of ['\n', '\r\n', '\r']) {
      const text = ['data: {"a":1}', '', ': a comment, then an unknown field', 'id: 7', 'event: message_start', 'data: line one', 'data:line two', '', 'data: ü€😀', '', ''].join(eol);
      for (const pieces of splits(text)) expect(sseEvents(pieces), JSON.stringify({ eol, pieces: pieces.length })).to.deep.equal(expected);
    }
  });

  it('an empty chunk between the CR and the LF of a CRLF does not split the line (found in review)', function () {
    expect(sseEvents([Buffer.from('data: x\r'), Buffer.alloc(0), Buffer.from('\ndata: y\n\n')])).to.deep.equal([['', 'x\ny']]);
  });

  it('strips a byte-order mark, ignores comment-only events and blank lines between events', function () {
    expect(sseEvents([Buffer.from('\ufeffdata: x\n\n\n\n: ping\n\ndata: y\n\n')])).to.deep.equal([
      ['', 'x'],
      ['', 'y'],
    ]);
  });

  it('delivers an event larger than 64 KiB whole, however it is chunked', function () {
    const big = 'x'.repeat(200 * 1024);
    const text = Buffer.from(`data: ${big}\n\ndata: after\n\n`);
    const chunked: Buffer[] = [];
    for (let at = 0; at < text.length; at += 1000) chunked.push(text.subarray(at, at + 1000));
    expect(sseEvents(chunked)).to.deep.equal([
      ['', big],
      ['', 'after'],
    ]);
  });

  it('drops an event over the cap and still finds the next one', function () {
    const text = `data: ${'x'.repeat(5000)}\n\ndata: ${'y'.repeat(3000)}\ndata: ${'y'.repeat(3000)}\n\ndata: small\n\n`;
    for (const pieces of [[Buffer.from(text)], [Buffer.from(text.slice(0, 2500)), Buffer.from(text.slice(2500))]]) {
      expect(sseEvents(pieces, 4096)).to.deep.equal([['', 'small']]);
    }
  });

  it('passes over a chunk of whole events its filter does not want, and never an event it would want, at every split', function () {
    const wanted = (text: string) => text.includes('usage');
    for (const eol of ['\n', '\r\n', '\r']) {
      const text = ['data: {"a":1}', '', 'event: delta', 'data: {"b":2}', '', 'data: {"usage":', 'data: {"n":3}}', '', 'data: {"c":4}', '', 'data: {"usage":{"n":5}}', '', ''].join(eol);
      const all = sseEvents([Buffer.from(text)]).filter(([, data]) => wanted(data));
      expect(all, eol).to.have.length(2);
      for (const pieces of splits(text)) {
        let passedOver = 0;
        const unwanted = (chunk: Buffer) => {
          const skip = !wanted(chunk.toString('latin1'));
          if (skip) passedOver += 1;
          return skip;
        };
        const seen = sseEvents(pieces, 1024 * 1024, unwanted).filter(([, data]) => wanted(data));
        expect(seen, JSON.stringify({ eol, pieces: pieces.map(String) })).to.deep.equal(all);
      }
    }
    // Chunks as an upstream writes them, one event each: all but the usage-bearing ones are passed over.
    let asked = 0;
    const perEvent = ['data: {"a":1}\n\n', 'data: {"b":2}\r\n\r\n', ': ping\n\n', 'data: {"usage":{"n":5}}\n\n', 'data: [DONE]\n\n'].map((e) => Buffer.from(e));
    const events = sseEvents(perEvent, 1024 * 1024, (chunk) => {
      asked += 1;
      return !chunk.includes('usage');
    });
    expect(events).to.deep.equal([['', '{"usage":{"n":5}}']]);
    expect(asked).to.equal(5);
  });

  it('counts an event the stream ended without a blank line after (a cut stream)', function () {
    expect(sseEvents([Buffer.from('data: one\n\ndata: two')])).to.deep.equal([
      ['', 'one'],
      ['', 'two'],
    ]);
  });
});

function documents(pieces: Buffer[], max = 1024 * 1024): { docs: string[]; tails: string[]; chunkBytes: number } {
  const docs: string[] = [];
  const tails: string[] = [];
  let chunkBytes = 0;
  const sink = { document: (bytes: Buffer) => docs.push(bytes.toString('utf8')), tail: (bytes: Buffer) => tails.push(bytes.toString('utf8')), chunk: (bytes: Buffer) => (chunkBytes += bytes.length) };
  const splitter = new JsonDocuments(sink, max);
  for (const piece of pieces) splitter.push(piece);
  splitter.finish();
  return { docs, tails, chunkBytes };
}

describe('JSON document splitter', function () {
  it('a small body that is one object is its own tail, at every split, and passes as chunks', function () {
    const body = ' {"usage":{"a":1},"text":"} ] {"}';
    for (const pieces of splits(body)) {
      const result = documents(pieces);
      expect(result.docs).to.deep.equal([]);
      expect(result.tails).to.deep.equal([body.trim()]);
      expect(result.chunkBytes).to.equal(body.trim().length);
    }
  });

  it('of a large object body only the last 64 KiB are kept, however it was chunked', function () {
    const big = `{"data":"${'x'.repeat(300_000)}","usage":{"n":3}}`;
    for (const size of [1, 1000, 16_384, 65_536, 70_000, 400_000]) {
      const pieces = [];
      for (let at = 0; at < big.length; at += size) pieces.push(Buffer.from(big.slice(at, at + size)));
      const result = documents(size === 1 ? [pieces[0] as Buffer, ...pieces.slice(-70_000)] : pieces);
      expect(result.tails, `pieces of ${size}`).to.have.length(1);
      expect(result.tails[0], `pieces of ${size}`).to.equal(big.slice(-tailBytes));
    }
  });

  it('an array body yields each object element, whatever is in its strings, at every split', function () {
    const elements = ['{"a":"}{][\\"\\\\"}', '{"b":[1,{"c":2}],"d":"é"}', '{}'];
    const body = `[${elements[0]}\n,${elements[1]}\r\n, 7, "str]", ${elements[2]}]`;
    for (const pieces of splits(body)) expect(documents(pieces).docs, `${pieces.length} pieces`).to.deep.equal(elements);
  });

  it('a cut array stream still yields the elements that arrived whole', function () {
    expect(documents([Buffer.from('[{"a":1}\n,{"b":2}\n,{"c":')]).docs).to.deep.equal(['{"a":1}', '{"b":2}']);
  });

  it('an array element over the cap is skipped', function () {
    expect(documents([Buffer.from(`[{"a":"${'x'.repeat(20_000)}"},{"b":1}]`)], 10_000).docs).to.deep.equal(['{"b":1}']);
  });
});

describe('byte-level key search', function () {
  const key = Buffer.from('"usage"');

  it('hasObjectKey sees an object value only, not null, and not a key inside a string', function () {
    expect(hasObjectKey(Buffer.from('{"usage" : \n {"x":1}}'), key)).to.equal(true);
    expect(hasObjectKey(Buffer.from('{"usage":null,"choices":[]}'), key)).to.equal(false);
    expect(hasObjectKey(Buffer.from('{"content":"say \\"usage\\":{ here"}'), key)).to.equal(false);
  });

  it('mayHaveObjectKeyInLines says yes where a data line may go on to an object value, no for null or a quoted key', function () {
    const yes = ['data: {"usage":{"x":1}}\n\n', 'data: {"usage" : \t{"x":1}}\n\n', 'data: {"usage":\ndata: {"x":1}}\n\n', 'data: {"usage"\r\ndata: :{"x":1}}\n\n', 'data: {"usage":null}\n\ndata: {"usage": {"x":1}}\n\n'];
    const no = ['data: {"usage":null,"choices":[]}\n\n', 'data: {"content":"say \\"usage\\":{ here"}\n\n', 'data: {"usage_total":{"x":1}}\n\n', ': usage\n\n'];
    for (const text of yes) expect(mayHaveObjectKeyInLines(Buffer.from(text), key), text).to.equal(true);
    for (const text of no) expect(mayHaveObjectKeyInLines(Buffer.from(text), key), text).to.equal(false);
  });

  it('topLevelObjectValue reads the top-level member from the end, whatever is nested or quoted', function () {
    const document = {
      id: 'r-1',
      output: [{ type: 'function_call', arguments: '{"usage":{"fake":1}} \\" } ]' }],
      tools: [{ parameters: { properties: { usage: { type: 'object' } } } }],
      usage: { prompt_tokens: 5, d: { e: '}"{\\' } },
      after: { usage: { fake: 2 } },
      note: 'ends with a backslash \\',
      // Longer than the scan's short window, with escaped quotes on both sides of its edge.
      long: `${'a'.repeat(45)}"${'b'.repeat(70)}\\"{${'c'.repeat(31)}"`,
      n: -1.5e3,
      flag: true,
      empty: null,
      list: [1, [2, { usage: {} }]],
    };
    const text = `${JSON.stringify(document, null, 1)}\n`;
    expect(topLevelObjectValue(Buffer.from(text), key)).to.deep.equal(document.usage);
    // Cut anywhere before the member, the tail still gives it; cut inside it, nothing.
    const at = text.indexOf('"usage": {\n  "prompt_tokens"');
    for (let from = 0; from <= at; from += 7) expect(topLevelObjectValue(Buffer.from(text.slice(from)), key), `from ${from}`).to.deep.equal(document.usage);
    for (let from = at + 1; from < at + 20; from++) expect(topLevelObjectValue(Buffer.from(text.slice(from)), key), `from ${from}`).to.equal(undefined);
  });

  it('topLevelObjectValue finds nothing where the key is only nested, not an object, or the text is not an object', function () {
    expect(topLevelObjectValue(Buffer.from('{"a":{"usage":{"x":1}},"b":[{"usage":{"y":2}}]}'), key)).to.equal(undefined);
    expect(topLevelObjectValue(Buffer.from('{"usage":null,"b":1}'), key)).to.equal(undefined);
    expect(topLevelObjectValue(Buffer.from('[{"usage":{"x":1}}]'), key)).to.equal(undefined);
    expect(topLevelObjectValue(Buffer.from('{"usage":{"x":1},'), key)).to.equal(undefined);
    expect(topLevelObjectValue(Buffer.from('{}'), key)).to.equal(undefined);
    expect(topLevelObjectValue(Buffer.from('{"usage":{"x":1 2}}'), key)).to.equal(undefined);
  });

  it('StringValueCounter counts what stringValueBytes counts, however the body is chunked', function () {
    const text = Buffer.from(JSON.stringify({ choices: [{ text: 'a\\"b\\\\', other: 'text', more: { text: 'ü€ "quoted" \\' } }], text: 7, x: { text: '' } }));
    const textKey = Buffer.from('"text"');
    const whole = stringValueBytes(text, textKey);
    expect(whole).to.be.greaterThan(20);
    for (const pieces of splits(text)) {
      const counter = new StringValueCounter(textKey);
      for (const piece of pieces) counter.push(piece);
      // A chunk end between a key and its value's opening quote misses that value; elsewhere, exact.
      const cut = (pieces[0] as Buffer).length;
      const cutsKey = pieces.length === 2 && [...text.toString('latin1').matchAll(/"text":/g)].some((m) => m.index < cut && cut <= m.index + 7);
      if (pieces.length !== text.length && !cutsKey) expect(counter.bytes, `split at ${(pieces[0] as Buffer).length}`).to.equal(whole);
    }
  });
});

describe('model name from a request body', function () {
  it('reads the top-level model wherever it is, skipping nested keys and strings that look like it', function () {
    const body = {
      messages: [{ role: 'user', content: 'use "model": "not-this" {[' }],
      tools: [{ parameters: { properties: { model: { type: 'string' } }, model: 'nested' } }],
      metadata: { model: 'nested-too' },
      temperature: 0.5,
      stream: true,
      model: 'gpt-4o-mini',
    };
    expect(readModel(Buffer.from(JSON.stringify(body)))).to.equal('gpt-4o-mini');
    expect(readModel(Buffer.from(JSON.stringify(body, null, 2)))).to.equal('gpt-4o-mini');
    expect(readModel(Buffer.from('{"model":"claude-\\u00e9"}'))).to.equal('claude-é');
  });

  it('gives undefined for a body that is not an object, has no model, or a model that is not a string', function () {
    for (const body of ['', '[]', '{"messages":[]}', '{"model":42}', '{"model":"cut', 'not json', '{"a":"\\"}', '{"a" 1, "model":"x"}']) {
      expect(readModel(Buffer.from(body)), body).to.equal(undefined);
    }
  });
});
