// The figures each scenario is judged by, and the budgets they are checked against. Ratios and
// differences are taken within a round (the targets ran back to back), then the median over rounds
// is reported, so that drift in the machine's load cancels out. Every budget is named by the figure
// it is about, and prints its numbers.
import { median } from './stats.js';
import { targetNames, type Measure, type TargetName } from './target.js';

export type Round = Record<TargetName, Measure>;

export interface Check {
  label: string;
  value: number;
  limit: number;
  op: '>=' | '<=' | '<' | '==';
  pass: boolean;
}

export interface Derivation {
  derived: Record<string, number>;
  checks: Check[];
}

export function metricOf(round: Round, target: TargetName, metric: string): number {
  return round[target]?.[metric] ?? Number.NaN;
}

function perRound(rounds: Round[], f: (round: Round) => number): number {
  return median(rounds.map(f));
}

function sumOver(rounds: Round[], targets: readonly TargetName[], metric: string): number {
  let total = 0;
  for (const round of rounds) for (const target of targets) total += metricOf(round, target, metric) || 0;
  return total;
}

function maxOver(rounds: Round[], target: TargetName, metric: string): number {
  return Math.max(...rounds.map((r) => metricOf(r, target, metric)));
}

export function check(label: string, value: number, op: Check['op'], limit: number): Check {
  const pass = op === '>=' ? value >= limit : op === '<=' ? value <= limit : op === '<' ? value < limit : value === limit;
  return { label, value, limit, op, pass };
}

/** A check on a figure of `derived`, which must be there under the same label. */
function budget(derived: Record<string, number>, label: string, op: Check['op'], limit: number): Check {
  return check(label, derived[label] ?? Number.NaN, op, limit);
}

export function derive(id: string, rounds: Round[]): Derivation {
  const ratio = (metric: string, a: TargetName, b: TargetName) => perRound(rounds, (r) => metricOf(r, a, metric) / metricOf(r, b, metric));
  const minus = (metric: string, a: TargetName, b: TargetName) => perRound(rounds, (r) => metricOf(r, a, metric) - metricOf(r, b, metric));
  const added = (metric: string, a: TargetName) => minus(metric, a, 'direct');
  const errors = check('requests that failed (all targets)', sumOver(rounds, targetNames, 'errors'), '==', 0);
  const streamsFailed = check('streams that failed (all targets)', sumOver(rounds, targetNames, 'failed'), '==', 0);
  const throughputRatios = (cpuMetric: string, cpuLabel: string) => ({
    'llm-proxy/bare req/s': ratio('rps', 'llm-proxy', 'bare'),
    'llm-proxy/nginx req/s': ratio('rps', 'llm-proxy', 'nginx'),
    'llm-proxy/direct req/s': ratio('rps', 'llm-proxy', 'direct'),
    'bare/nginx req/s': ratio('rps', 'bare', 'nginx'),
    [`llm-proxy/bare ${cpuLabel}`]: ratio(cpuMetric, 'llm-proxy', 'bare'),
    [`llm-proxy/nginx ${cpuLabel}`]: ratio(cpuMetric, 'llm-proxy', 'nginx'),
    [`bare/nginx ${cpuLabel}`]: ratio(cpuMetric, 'bare', 'nginx'),
  });
  switch (id) {
    case 'S1':
    case 'S2': {
      const derived = throughputRatios('cpuMsPer1k', 'CPU per request');
      return {
        derived,
        checks: [budget(derived, 'llm-proxy/bare req/s', '>=', 1), budget(derived, 'llm-proxy/bare CPU per request', '<=', 1.2), errors],
      };
    }
    case 'S3': {
      const derived: Record<string, number> = {};
      for (const target of ['llm-proxy', 'bare', 'nginx'] as const) {
        derived[`${target} added p50 ms`] = added('p50Ms', target);
        derived[`${target} added p99 ms`] = added('p99Ms', target);
      }
      derived['llm-proxy minus bare p50 ms'] = minus('p50Ms', 'llm-proxy', 'bare');
      derived['llm-proxy minus bare p99 ms'] = minus('p99Ms', 'llm-proxy', 'bare');
      derived['llm-proxy/bare CPU per request'] = ratio('cpuMsPer1k', 'llm-proxy', 'bare');
      derived['llm-proxy/nginx CPU per request'] = ratio('cpuMsPer1k', 'llm-proxy', 'nginx');
      return { derived, checks: [budget(derived, 'llm-proxy added p50 ms', '<=', 0.3), budget(derived, 'llm-proxy added p99 ms', '<=', 1), errors] };
    }
    case 'S4': {
      const derived: Record<string, number> = {};
      for (const target of ['llm-proxy', 'bare', 'nginx'] as const) {
        derived[`${target} added TTFT p50 ms`] = added('ttftP50Ms', target);
        derived[`${target} added TTFT p99 ms`] = added('ttftP99Ms', target);
        derived[`${target} added gap p99 ms`] = added('gapP99Ms', target);
      }
      derived['llm-proxy TTFT p99 minus nginx TTFT p99 ms'] = minus('ttftP99Ms', 'llm-proxy', 'nginx');
      derived['llm-proxy TTFT p99 minus bare TTFT p99 ms'] = minus('ttftP99Ms', 'llm-proxy', 'bare');
      derived['llm-proxy/nginx CPU per 1,000 events'] = ratio('cpuMsPer1kEvents', 'llm-proxy', 'nginx');
      derived['llm-proxy/bare CPU per 1,000 events'] = ratio('cpuMsPer1kEvents', 'llm-proxy', 'bare');
      derived['llm-proxy events lost'] = sumOver(rounds, ['llm-proxy'], 'expectedEvents') - sumOver(rounds, ['llm-proxy'], 'events');
      derived['llm-proxy peak RSS MB'] = maxOver(rounds, 'llm-proxy', 'peakRssMB');
      derived['llm-proxy peak PSS MB'] = maxOver(rounds, 'llm-proxy', 'peakPssMB');
      derived['bare peak RSS MB'] = maxOver(rounds, 'bare', 'peakRssMB');
      derived['bare peak PSS MB'] = maxOver(rounds, 'bare', 'peakPssMB');
      derived['nginx peak RSS MB'] = maxOver(rounds, 'nginx', 'peakRssMB');
      return {
        derived,
        checks: [
          budget(derived, 'llm-proxy/nginx CPU per 1,000 events', '<=', 1.5),
          budget(derived, 'llm-proxy peak RSS MB', '<', 250),
          budget(derived, 'llm-proxy TTFT p99 minus nginx TTFT p99 ms', '<=', 10),
          budget(derived, 'llm-proxy events lost', '==', 0),
          streamsFailed,
        ],
      };
    }
    case 'S5': {
      const derived = throughputRatios('cpuMsPer1k', 'CPU per request');
      return { derived, checks: [check('bodies that arrived altered (all targets)', sumOver(rounds, targetNames, 'bodyMismatches'), '==', 0), errors] };
    }
    case 'S6': {
      const derived = throughputRatios('cpuMsPer1k', 'CPU per request');
      // Each one a response after which wrk kept the connection: that target's figures would then
      // be partly keep-alive, not churn.
      const keptOpen = check('responses that kept the connection open (all targets)', sumOver(rounds, targetNames, 'keptAlive'), '==', 0);
      return { derived, checks: [errors, keptOpen] };
    }
    case 'S7': {
      const derived: Record<string, number> = {};
      for (const target of targetNames) {
        derived[`${target} longest gap with large responses minus without ms`] = perRound(rounds, (r) => metricOf(r, target, 'gapMaxAddedMs'));
        derived[`${target} gap p99 with large responses minus without ms`] = perRound(rounds, (r) => metricOf(r, target, 'gapP99AddedMs'));
        derived[`${target} longest gap added on the path, with large responses minus without ms`] = perRound(rounds, (r) => metricOf(r, target, 'pathGapMaxAddedMs'));
      }
      derived['large responses fetched (all targets)'] = sumOver(rounds, targetNames, 'largeFetched');
      return {
        derived,
        checks: [
          // On the gaps the path added: the mock's timers and its own 10 MB writes move every target's
          // raw gaps by ±15 ms from run to run, direct access included, which would swamp 5 ms.
          budget(derived, 'llm-proxy longest gap added on the path, with large responses minus without ms', '<=', 5),
          check('large responses that failed (all targets)', sumOver(rounds, targetNames, 'largeFailed'), '==', 0),
          streamsFailed,
        ],
      };
    }
    default:
      return { derived: {}, checks: [] };
  }
}
