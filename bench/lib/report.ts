// Turns the rounds of each scenario into medians, the ratios the budget is stated in, and a table.
// Ratios and differences are taken within a round (the targets ran back to back) and then the
// median over rounds is reported, so that drift in the machine's load cancels out.
import { median } from './stats.js';
import { targetNames, type Measure, type TargetName } from './scenarios.js';

export type Round = Record<TargetName, Measure>;

export interface Check {
  label: string;
  value: number;
  limit: number;
  op: '>=' | '<=' | '<' | '==';
  pass: boolean;
}

export interface ScenarioSummary {
  id: string;
  title: string;
  rounds: Round[];
  medians: Record<TargetName, Measure>;
  derived: Record<string, number>;
  checks: Check[];
}

interface Column {
  metric: string;
  header: string;
  decimals: number;
}

const columns: Record<string, Column[]> = {
  throughput: [
    { metric: 'rps', header: 'req/s', decimals: 0 },
    { metric: 'p50Ms', header: 'p50 ms', decimals: 2 },
    { metric: 'p99Ms', header: 'p99 ms', decimals: 2 },
    { metric: 'errors', header: 'errors', decimals: 0 },
    { metric: 'cpuMsPer1k', header: 'CPU ms/1k req', decimals: 1 },
  ],
  S3: [
    { metric: 'p50Ms', header: 'p50 ms', decimals: 3 },
    { metric: 'p99Ms', header: 'p99 ms', decimals: 3 },
    { metric: 'rps', header: 'req/s', decimals: 0 },
    { metric: 'errors', header: 'errors', decimals: 0 },
    { metric: 'cpuMsPer1k', header: 'CPU ms/1k req', decimals: 1 },
  ],
  S4: [
    { metric: 'ttftP50Ms', header: 'TTFT p50 ms', decimals: 2 },
    { metric: 'ttftP99Ms', header: 'TTFT p99 ms', decimals: 2 },
    { metric: 'gapP99Ms', header: 'gap p99 ms', decimals: 1 },
    { metric: 'events', header: 'events', decimals: 0 },
    { metric: 'failed', header: 'failed', decimals: 0 },
    { metric: 'peakRssMB', header: 'peak RSS MB', decimals: 0 },
    { metric: 'peakPssMB', header: 'peak PSS MB', decimals: 0 },
    { metric: 'cpuMsPer1kEvents', header: 'CPU ms/1k ev', decimals: 1 },
  ],
  S5: [
    { metric: 'rps', header: 'req/s', decimals: 0 },
    { metric: 'mbPerSec', header: 'MiB/s', decimals: 0 },
    { metric: 'p99Ms', header: 'p99 ms', decimals: 1 },
    { metric: 'errors', header: 'errors', decimals: 0 },
    { metric: 'bodyMismatches', header: 'bad bodies', decimals: 0 },
    { metric: 'cpuMsPer1k', header: 'CPU ms/1k req', decimals: 0 },
  ],
};

function columnsFor(id: string): Column[] {
  return columns[id] ?? (columns['throughput'] as Column[]);
}

function metricOf(round: Round, target: TargetName, metric: string): number {
  return round[target][metric] ?? Number.NaN;
}

function perRound(rounds: Round[], f: (round: Round) => number): number {
  return median(rounds.map(f));
}

function sumOver(rounds: Round[], targets: readonly TargetName[], metric: string): number {
  let total = 0;
  for (const round of rounds) for (const target of targets) total += metricOf(round, target, metric) || 0;
  return total;
}

function check(label: string, value: number, op: Check['op'], limit: number): Check {
  const pass = op === '>=' ? value >= limit : op === '<=' ? value <= limit : op === '<' ? value < limit : value === limit;
  return { label, value, limit, op, pass };
}

function derive(id: string, rounds: Round[]): { derived: Record<string, number>; checks: Check[] } {
  const ratio = (metric: string, a: TargetName, b: TargetName) => perRound(rounds, (r) => metricOf(r, a, metric) / metricOf(r, b, metric));
  const added = (metric: string, a: TargetName) => perRound(rounds, (r) => metricOf(r, a, metric) - metricOf(r, 'direct', metric));
  const errors = sumOver(rounds, targetNames, 'errors');
  switch (id) {
    case 'S1':
    case 'S2': {
      const derived = {
        'llm-proxy/nginx req/s': ratio('rps', 'llm-proxy', 'nginx'),
        'llm-proxy/direct req/s': ratio('rps', 'llm-proxy', 'direct'),
        'llm-proxy/nginx CPU per request': ratio('cpuMsPer1k', 'llm-proxy', 'nginx'),
      };
      return { derived, checks: [check('llm-proxy/nginx throughput', derived['llm-proxy/nginx req/s'], '>=', 0.7), check('requests that failed (all targets)', errors, '==', 0)] };
    }
    case 'S3': {
      const derived = {
        'llm-proxy added p50 ms': added('p50Ms', 'llm-proxy'),
        'llm-proxy added p99 ms': added('p99Ms', 'llm-proxy'),
        'nginx added p50 ms': added('p50Ms', 'nginx'),
        'nginx added p99 ms': added('p99Ms', 'nginx'),
      };
      return {
        derived,
        checks: [
          check('llm-proxy added p50 ms', derived['llm-proxy added p50 ms'], '<=', 0.3),
          check('llm-proxy added p99 ms', derived['llm-proxy added p99 ms'], '<=', 1),
          check('requests that failed (all targets)', errors, '==', 0),
        ],
      };
    }
    case 'S4': {
      const lost = (target: TargetName) => sumOver(rounds, [target], 'expectedEvents') - sumOver(rounds, [target], 'events');
      const derived = {
        'llm-proxy added TTFT p50 ms': added('ttftP50Ms', 'llm-proxy'),
        'llm-proxy added TTFT p99 ms': added('ttftP99Ms', 'llm-proxy'),
        'llm-proxy added gap p99 ms': added('gapP99Ms', 'llm-proxy'),
        'nginx added TTFT p99 ms': added('ttftP99Ms', 'nginx'),
        'nginx added gap p99 ms': added('gapP99Ms', 'nginx'),
        'llm-proxy events lost': lost('llm-proxy'),
        'llm-proxy peak RSS MB': Math.max(...rounds.map((r) => metricOf(r, 'llm-proxy', 'peakRssMB'))),
        'llm-proxy peak PSS MB': Math.max(...rounds.map((r) => metricOf(r, 'llm-proxy', 'peakPssMB'))),
        'nginx peak RSS MB': Math.max(...rounds.map((r) => metricOf(r, 'nginx', 'peakRssMB'))),
      };
      return {
        derived,
        checks: [
          check('llm-proxy added TTFT p99 ms', derived['llm-proxy added TTFT p99 ms'], '<=', 1),
          check('llm-proxy events lost', derived['llm-proxy events lost'], '==', 0),
          check('llm-proxy peak RSS MB', derived['llm-proxy peak RSS MB'], '<', 300),
          check('streams that failed (all targets)', sumOver(rounds, targetNames, 'failed'), '==', 0),
        ],
      };
    }
    case 'S5': {
      const derived = {
        'llm-proxy/nginx req/s': ratio('rps', 'llm-proxy', 'nginx'),
        'llm-proxy/direct req/s': ratio('rps', 'llm-proxy', 'direct'),
        'llm-proxy/nginx CPU per request': ratio('cpuMsPer1k', 'llm-proxy', 'nginx'),
      };
      return {
        derived,
        checks: [
          check('bodies that arrived altered (all targets)', sumOver(rounds, targetNames, 'bodyMismatches'), '==', 0),
          check('requests that failed (all targets)', errors, '==', 0),
        ],
      };
    }
    default:
      return { derived: {}, checks: [] };
  }
}

export function summarise(id: string, title: string, rounds: Round[]): ScenarioSummary {
  const medians = {} as Record<TargetName, Measure>;
  for (const target of targetNames) {
    const metrics = new Set(rounds.flatMap((r) => Object.keys(r[target])));
    const m: Measure = {};
    for (const metric of metrics) m[metric] = median(rounds.map((r) => metricOf(r, target, metric)));
    medians[target] = m;
  }
  return { id, title, rounds, medians, ...derive(id, rounds) };
}

function format(value: number | undefined, decimals: number): string {
  if (value === undefined || !Number.isFinite(value)) return '-';
  return value.toFixed(decimals);
}

function pad(cells: string[], widths: number[]): string {
  return cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number))).join('  ');
}

export function renderScenario(summary: ScenarioSummary): string {
  const cols = columnsFor(summary.id);
  const first = cols[0] as Column;
  const n = summary.rounds.length;
  const header = ['target', ...cols.map((c) => c.header), ...(n > 1 ? [`${first.header} min-max`] : [])];
  const rows = targetNames.map((target) => {
    const values = summary.rounds.map((r) => metricOf(r, target, first.metric));
    const spread = n > 1 ? [`${format(Math.min(...values), first.decimals)}-${format(Math.max(...values), first.decimals)}`] : [];
    return [target, ...cols.map((c) => format(summary.medians[target][c.metric], c.decimals)), ...spread];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const lines = [`${summary.id} ${summary.title}; median of ${n} round${n === 1 ? '' : 's'}`, pad(header, widths), ...rows.map((r) => pad(r, widths))];
  for (const [label, value] of Object.entries(summary.derived)) lines.push(`  ${label}: ${format(value, Math.abs(value) >= 10 ? 1 : 3)}`);
  for (const c of summary.checks) lines.push(`  [${c.pass ? 'pass' : 'FAIL'}] ${c.label} ${format(c.value, Math.abs(c.value) >= 10 ? 1 : 3)} (budget ${c.op} ${c.limit})`);
  return lines.join('\n');
}
