// Turns the rounds of each scenario into medians, the figures the budgets are stated in (see
// budgets.ts), and a table per scenario.
import { derive, metricOf, type Check, type Round } from './budgets.js';
import { median } from './stats.js';
import { targetNames, type Measure, type TargetName } from './target.js';

export type { Check, Round } from './budgets.js';

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

const throughput: Column[] = [
  { metric: 'rps', header: 'req/s', decimals: 0 },
  { metric: 'p50Ms', header: 'p50 ms', decimals: 2 },
  { metric: 'p99Ms', header: 'p99 ms', decimals: 2 },
  { metric: 'errors', header: 'errors', decimals: 0 },
  { metric: 'cpuMsPer1k', header: 'CPU ms/1k req', decimals: 1 },
];

const columns: Record<string, Column[]> = {
  S3: [
    { metric: 'p50Ms', header: 'p50 ms', decimals: 3 },
    { metric: 'p99Ms', header: 'p99 ms', decimals: 3 },
    { metric: 'sentP50Ms', header: 'p50 from send', decimals: 3 },
    { metric: 'sentP99Ms', header: 'p99 from send', decimals: 3 },
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
  S6: [
    { metric: 'rps', header: 'conn/s = req/s', decimals: 0 },
    { metric: 'p50Ms', header: 'p50 ms', decimals: 2 },
    { metric: 'p99Ms', header: 'p99 ms', decimals: 2 },
    { metric: 'errors', header: 'errors', decimals: 0 },
    { metric: 'keptAlive', header: 'kept open', decimals: 0 },
    { metric: 'cpuMsPer1k', header: 'CPU ms/1k req', decimals: 1 },
  ],
  S7: [
    { metric: 'gapMaxMs', header: 'gap max ms', decimals: 1 },
    { metric: 'gapMaxLargeMs', header: 'max w/ large', decimals: 1 },
    { metric: 'gapMaxAddedMs', header: 'max diff', decimals: 1 },
    { metric: 'gapP99Ms', header: 'gap p99 ms', decimals: 1 },
    { metric: 'gapP99LargeMs', header: 'p99 w/ large', decimals: 1 },
    { metric: 'gapP99AddedMs', header: 'p99 diff', decimals: 1 },
    { metric: 'pathGapMaxMs', header: 'path max', decimals: 1 },
    { metric: 'pathGapMaxLargeMs', header: 'path w/ large', decimals: 1 },
    { metric: 'pathGapMaxAddedMs', header: 'path diff', decimals: 1 },
    { metric: 'largeFetched', header: 'large ok', decimals: 0 },
    { metric: 'largeFailed', header: 'large failed', decimals: 0 },
    { metric: 'failed', header: 'failed streams', decimals: 0 },
  ],
};

function columnsFor(id: string): Column[] {
  return columns[id] ?? throughput;
}

export function summarise(id: string, title: string, rounds: Round[]): ScenarioSummary {
  const medians = {} as Record<TargetName, Measure>;
  for (const target of targetNames) {
    const metrics = new Set(rounds.flatMap((r) => Object.keys(r[target] ?? {})));
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

/** A check as one line: its figure, its value and the budget, e.g. `[FAIL] llm-proxy/bare req/s 0.850 (budget >= 1)`. */
export function renderCheck(c: Check): string {
  return `[${c.pass ? 'pass' : 'FAIL'}] ${c.label} ${format(c.value, Math.abs(c.value) >= 10 ? 1 : 3)} (budget ${c.op} ${c.limit})`;
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
  for (const c of summary.checks) lines.push(`  ${renderCheck(c)}`);
  return lines.join('\n');
}

/** Whether every budget of every scenario held. */
export function allPass(summaries: readonly ScenarioSummary[]): boolean {
  return summaries.every((s) => s.checks.every((c) => c.pass));
}
