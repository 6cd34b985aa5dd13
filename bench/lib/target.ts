// What every scenario works with: the targets, the load plan and the context the runner hands over.
import type { MockProcess } from './mock-process.js';

export type TargetName = 'direct' | 'nginx' | 'bare' | 'llm-proxy';
/** The order targets run in within a round. */
export const targetNames: readonly TargetName[] = ['direct', 'nginx', 'bare', 'llm-proxy'];

export interface Target {
  readonly name: TargetName;
  readonly port: number;
  /** The processes that are this target (the mock's own for direct). */
  readonly pids: readonly number[];
}

export interface SsePlan {
  streams: number;
  tokens: number;
  intervalMs: number;
  rampMs: number;
}

export interface LoadPlan {
  rounds: number;
  /** Length of a throughput run (S1, S2, S5, S6). */
  seconds: number;
  /** Length of an open-loop latency run (S3). */
  latencySeconds: number;
  warmUpSeconds: number;
  sse: SsePlan;
  /** S7: streams, and beside them one JSON response of jsonBytes every everyMs. */
  largeBodies: SsePlan & { jsonBytes: number; everyMs: number };
}

export interface BenchContext {
  readonly dir: string;
  readonly caFile: string;
  readonly clientKey: string;
  readonly mock: MockProcess;
  readonly smallBodyFile: string;
  readonly smallBody: string;
  readonly largeBodyFile: string;
  readonly largeBodyBytes: number;
  readonly largeBodyCrc: number;
  readonly plan: LoadPlan;
}

export type Measure = Record<string, number>;

export interface Scenario {
  readonly id: string;
  readonly title: string;
  run(target: Target, ctx: BenchContext, warmUp: boolean): Promise<Measure>;
}

export const apiPath = '/v1/chat/completions';

export function origin(target: Target): string {
  return `https://127.0.0.1:${target.port}`;
}

export function clientHeaders(ctx: BenchContext): Record<string, string> {
  return { 'content-type': 'application/json', authorization: `Bearer ${ctx.clientKey}` };
}
