// Issue 16: how an unnamed client key is shown (a fingerprint, never the key, distinct for short
// keys that a mask showed all alike as `****`), and the log format: `auto` and the one-line pretty
// rendering of an access line.
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { prettyFactory } from 'pino-pretty';
import { buildSnapshot } from '../../src/primary/build-snapshot.js';
import type { LoadedConfig } from '../../src/primary/load-config.js';
import { configSchema } from '../../src/shared/config/schema.js';
import { keyFingerprint, prettyOptions, resolveLogFormat } from '../../src/shared/log.js';

describe('key fingerprint', function () {
  it('is key: and the first 8 hex digits of the SHA-256, the same every time', function () {
    const key = 'short-1';
    const expected = `key:${createHash('sha256').update(key).digest('hex').slice(0, 8)}`;
    expect(keyFingerprint(key)).to.equal(expected).and.to.equal(keyFingerprint(key));
    expect(keyFingerprint(key)).to.match(/^key:[0-9a-f]{8}$/);
  });

  it('tells short keys apart and never contains the key', function () {
    const keys = ['a', 'b', 'abc', 'abcd', 'team1', 'team2', '0123456789abcde'];
    const labels = keys.map(keyFingerprint);
    expect(new Set(labels).size).to.equal(keys.length);
    for (const [i, key] of keys.entries()) expect(labels[i]?.slice(4)).not.to.include(key.length > 2 ? key : '\u0000');
  });

  it('labels unnamed keys in the snapshot (long and short), keeps names, and limited keys carry the same label', function () {
    const config = configSchema.parse({
      cert_file: 'c',
      private_key_file: 'k',
      auth_keys: ['tiny', 'sk-a-long-enough-client-key-0001', { key: 'named-key-0001', name: 'team-a' }, { key: 'lim', rate_limit: { requests_per_minute: 5 } }],
      providers: [{ type: 'openai', host: 'fp.proxy.test', endpoint: '127.0.0.1', port: 1, api_key: 'sk-upstream-fingerprint-0001' }],
    });
    const loaded = { config, certPem: '', keyPem: '', caPems: new Map(), warnings: [] } as unknown as LoadedConfig;
    const snapshot = buildSnapshot(loaded, 1, '', 1);
    expect(snapshot.globalClientKeys.map((key) => key.label)).to.deep.equal([keyFingerprint('tiny'), keyFingerprint('sk-a-long-enough-client-key-0001'), 'team-a', keyFingerprint('lim')]);
    expect(snapshot.globalClientKeys[3]?.limit?.label).to.equal(keyFingerprint('lim'));
  });
});

describe('log format', function () {
  it('auto is the default, and means JSON unless stdout is a terminal', function () {
    const config = configSchema.parse({ cert_file: 'c', private_key_file: 'k', providers: [{ type: 'openai', host: 'x.proxy.test', endpoint: '127.0.0.1', port: 1 }] });
    expect(config.log.format).to.equal('auto');
    expect(resolveLogFormat('auto', false)).to.equal('json');
    expect(resolveLogFormat('auto', true)).to.equal('pretty');
    expect(resolveLogFormat('json', true)).to.equal('json');
    expect(resolveLogFormat('pretty', false)).to.equal('pretty');
  });

  it('pretty renders an access line as one line with what an operator looks for', function () {
    const format = prettyFactory(prettyOptions(false));
    const line = {
      level: 30,
      time: '2026-01-01T00:00:00.000Z',
      pid: 7,
      worker: 1,
      reqId: '0a1b2c3d4e-1-2f',
      method: 'POST',
      path: '/v1/chat/completions',
      protocol: 'h2',
      route: 'api.proxy.test',
      provider: 'openai',
      clientKey: 'team\nx',
      model: 'gpt-x',
      instance: 'openai-0',
      attempts: 1,
      status: 200,
      bytesIn: 20,
      bytesOut: 300,
      ttfbMs: 3.5,
      durationMs: 12.25,
      inputTokens: 10,
      outputTokens: 5,
      msg: 'request',
    };
    const text = format(JSON.stringify(line));
    expect(text.replace(/\n$/, '')).not.to.include('\n');
    for (const part of ['request 0a1b2c3d4e-1-2f POST /v1/chat/completions 200 12.25ms', 'ttfb=3.5ms', 'provider=openai', 'key=team x', 'api.proxy.test', 'openai-0', 'gpt-x']) {
      expect(text).to.include(part);
    }
    // Said once, not again in the object after the message.
    expect(text.split('POST').length).to.equal(2);
  });

  it('pretty keeps other lines readable on one line, their fields included', function () {
    const format = prettyFactory(prettyOptions(false));
    const text = format(JSON.stringify({ level: 40, time: '2026-01-01T00:00:00.000Z', pid: 7, instance: 'a', route: 'r', key: 'sk-...0001', msg: 'instance unhealthy' }));
    expect(text.replace(/\n$/, '')).not.to.include('\n');
    expect(text).to.include('instance unhealthy').and.to.include('"route":"r"').and.to.include('sk-...0001');
  });
});
