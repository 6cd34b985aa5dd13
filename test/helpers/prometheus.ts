// A strict reader of the Prometheus text exposition format, so a test catches malformed output as a
// Prometheus server would refuse it, and reads exact sample values by series.
import { expect } from 'chai';
import { request } from 'undici';

/**
 * Parses the Prometheus text format strictly enough to catch a malformed exposition: every line is a
 * comment (# HELP / # TYPE with a known type) or `name{labels} value`; each series appears once.
 */
export function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    if (line.startsWith('# TYPE ')) {
      expect(line.split(' ')[3], line).to.be.oneOf(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
      continue;
    }
    const match = sample.exec(line);
    expect(match, `not a valid sample line: ${line}`).to.not.equal(null);
    const series = `${match?.[1]}${match?.[2] ?? ''}`;
    expect(samples.has(series), `series twice: ${series}`).to.equal(false);
    samples.set(series, Number(match?.[3]));
  }
  return samples;
}

/** Scrapes the admin listener's /metrics and parses it. */
export async function scrapeMetrics(adminPort: number): Promise<Map<string, number>> {
  const res = await request(`http://127.0.0.1:${adminPort}/metrics`);
  const text = await res.body.text();
  expect(res.statusCode).to.equal(200);
  return parseExposition(text);
}
