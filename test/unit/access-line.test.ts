// The access line is serialised by hand (access-log.ts) and written past pino (log.ts): it must be
// the line pino writes for the same fields, valid JSON whatever a client or an upstream put in its
// strings, and gone when the level is above info. Each case runs in a process of its own, since the
// logger writes to that process's stdout (the built modules, as the proxy runs them).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const dist = (path: string) => JSON.stringify(fileURLToPath(new URL(`../../dist/${path}`, import.meta.url)));

/** Runs `body` with a logger and a record whose strings are hostile; returns the lines it printed. */
function linesFrom(level: string, format: 'json' | 'pretty', body: string): string[] {
  const script = `
    import { createLogger, flushLog } from ${dist('shared/log.js')};
    import { ExchangeRecord, accessLineMembers, writeAccessLog } from ${dist('worker/access-log.js')};
    import { createWorkerMetrics } from ${dist('worker/metrics.js')};
    const log = createLogger({ level: ${JSON.stringify(level)}, format: ${JSON.stringify(format)}, base: { worker: 3 } });
    const down = {
      protocol: 'http/1.1', method: 'POST', target: '/v1/chat/"completions"\\n\\u2028?key=secret-in-query',
      rawHeaders: ['Host', 'x', 'X-Request-Id', 'id "quoted" \\\\ \\u0001 ü'], bytesIn: 12, bytesOut: 3456,
    };
    const record = new ExchangeRecord('abc-1-z', down);
    record.model = 'gpt-"4o"\\n\\t€';
    record.status = 200;
    record.ttfbMs = 1.23456;
    record.attempts = 2;
    record.reason = 'upstream said "no"';
    record.usage = { input: 10, output: Infinity, cacheRead: 0, cacheWrite: 7 };
    const ctx = { log, metrics: createWorkerMetrics() };
    ${body}
    await flushLog(log);
    process.exit(0);`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line !== '');
}

describe('access line', function () {
  this.timeout(20_000);

  it('is the line pino writes for the same fields, but for the time', function () {
    const [ours, pinos] = linesFrom('info', 'json', `
      const members = accessLineMembers(record, 12.3456);
      (await import(${dist('shared/log.js')})).infoLineWriterOf(log)(members, 'request');
      log.info(JSON.parse('{' + members + '}'), 'request');`);
    const withoutTime = (line: string) => line.replace(/"time":"[^"]+"/, '"time":""');
    expect(withoutTime(ours as string)).to.equal(withoutTime(pinos as string));
    const parsed = JSON.parse(ours as string) as Record<string, unknown>;
    expect(parsed.time).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(parsed).to.include({ level: 30, worker: 3, reqId: 'abc-1-z', msg: 'request', status: 200, attempts: 2, ttfbMs: 1.23, durationMs: 12.35 });
  });

  it('keeps every hostile string intact, drops the query, and writes a count that is not finite as null', function () {
    const [line] = linesFrom('info', 'json', 'writeAccessLog(ctx, record);');
    const parsed = JSON.parse(line as string) as Record<string, unknown>;
    expect(parsed.path).to.equal('/v1/chat/"completions"\n\u2028');
    expect(parsed.model).to.equal('gpt-"4o"\n\t€');
    expect(parsed.clientRequestId).to.equal('id "quoted" \\ \u0001 ü');
    expect(parsed.reason).to.equal('upstream said "no"');
    expect(parsed).to.include({ inputTokens: 10, outputTokens: null, cacheReadTokens: 0, cacheWriteTokens: 7, bytesIn: 12, bytesOut: 3456, protocol: 'http/1.1' });
    expect(line).to.not.include('secret-in-query');
  });

  it('is not written above the info level, and a pretty logger prints it as a person reads it', function () {
    expect(linesFrom('warn', 'json', 'writeAccessLog(ctx, record);')).to.deep.equal([]);
    const [pretty] = linesFrom('info', 'pretty', 'writeAccessLog(ctx, record);');
    expect(pretty).to.match(/request abc-1-z POST \/v1\/chat\/"completions"\s+\s*200 /);
    expect(pretty).to.include('ttfb=1.23ms');
  });
});
