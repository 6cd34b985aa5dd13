// The pieces of the usage tap that see raw bytes: the SSE parser, the JSON document splitter, the
// byte-level key searches and the request-body model reader. Every stream is also fed split at every
// byte, since a provider's chunking is arbitrary.
import { expect } from 'chai';
import { JsonDocuments } from '../../src/shared/usage/json-documents.js';
import { hasObjectKey, lastObjectValue } from '../../src/shared/usage/json-key.js';
import { createTopLevelStringReader } from '../../src/shared/usage/model-name.js';

const readModel = createTopLevelStringReader('model');
import { SseParser } from '../../src/shared/usage/sse-parser.js';

type Event = [string, string];

function sseEvents(pieces: Buffer[], maxEventBytes = 1024 * 1024): Event[] {
  const events: Event[] = [];
  const parser = new SseParser((event, data) => events.push([event, data.toString('utf8')]), maxEventBytes);
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

  it('counts an event the stream ended without a blank line after (a cut stream)', function () {
    expect(sseEvents([Buffer.from('data: one\n\ndata: two')])).to.deep.equal([
      ['', 'one'],
      ['', 'two'],
    ]);
  });
});

function documents(pieces: Buffer[], max = 1024 * 1024): { docs: string[]; tails: string[] } {
  const docs: string[] = [];
  const tails: string[] = [];
  const splitter = new JsonDocuments({ document: (bytes) => docs.push(bytes.toString('utf8')), tail: (bytes) => tails.push(bytes.toString('utf8')) }, max);
  for (const piece of pieces) splitter.push(piece);
  splitter.finish();
  return { docs, tails };
}

describe('JSON document splitter', function () {
  it('a body that is one object is one document', function () {
    const body = ' {"usage":{"a":1},"text":"} ] {"}';
    for (const pieces of splits(body)) expect(documents(pieces).docs).to.deep.equal([body.trim()]);
  });

  it('an array body yields each object element, whatever is in its strings, at every split', function () {
    const elements = ['{"a":"}{][\\"\\\\"}', '{"b":[1,{"c":2}],"d":"é"}', '{}'];
    const body = `[${elements[0]}\n,${elements[1]}\r\n, 7, "str]", ${elements[2]}]`;
    for (const pieces of splits(body)) expect(documents(pieces).docs, `${pieces.length} pieces`).to.deep.equal(elements);
  });

  it('a cut array stream still yields the elements that arrived whole', function () {
    expect(documents([Buffer.from('[{"a":1}\n,{"b":2}\n,{"c":')]).docs).to.deep.equal(['{"a":1}', '{"b":2}']);
  });

  it('an object over the cap is kept only as its tail; an element over the cap is skipped', function () {
    const big = `{"data":"${'x'.repeat(50_000)}","usage":{"n":3}}`;
    const result = documents([Buffer.from(big.slice(0, 30_000)), Buffer.from(big.slice(30_000))], 10_000);
    expect(result.docs).to.deep.equal([]);
    expect(result.tails).to.have.length(1);
    expect(big.endsWith(result.tails[0] as string)).to.equal(true);
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

  it('lastObjectValue parses the last whole object for the key in a fragment', function () {
    const fragment = Buffer.from('x","inner":{"usage":{"a":1}}],"usage":{"prompt_tokens":5,"d":{"e":"}"}}}');
    expect(lastObjectValue(fragment, key)).to.deep.equal({ prompt_tokens: 5, d: { e: '}' } });
    expect(lastObjectValue(Buffer.from('"usage":{"a":1'), key)).to.equal(undefined);
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
