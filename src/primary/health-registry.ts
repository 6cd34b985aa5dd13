// The primary's view of every instance's health, and the decisions made from it: active probe
// results with their thresholds, the circuit breaker fed by the workers' outcome reports (closed ->
// open -> half-open with one trial request -> closed), and 429 cooling. Workers only ever see the
// result, as a table of instances to skip.
import type { HealthTable, OutcomeCounts } from '../shared/ipc.js';
import { createHash } from 'node:crypto';
import { maskKey, type Logger } from '../shared/log.js';
import type { InstanceSpec, Snapshot } from '../shared/snapshot.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

interface InstanceHealth {
  spec: InstanceSpec;
  route: string;
  /** Active checks: false once the probes said so, until they say otherwise. */
  probeUp: boolean;
  probeOkStreak: number;
  probeFailStreak: number;
  lastProbeError: string | undefined;
  breaker: BreakerState;
  consecutiveFailures: number;
  openUntil: number;
  /** Worker id holding the half-open trial grant. */
  trialHolder: number | undefined;
  coolUntil: number;
  breakerTimer: NodeJS.Timeout | undefined;
  coolTimer: NodeJS.Timeout | undefined;
  /** undefined for a pass-through instance (no key of ours, no quota of ours). */
  quotaId: string | undefined;
}

/** What /status and metrics show per instance: names and states, never a key. */
export interface InstanceHealthReport {
  id: string;
  name: string;
  route: string;
  available: boolean;
  probe: 'up' | 'down';
  lastProbeError: string | undefined;
  breaker: BreakerState;
  consecutiveFailures: number;
  coolingForMs: number;
}

export interface HealthRegistry {
  /** Takes a new snapshot: unchanged instances keep their state, new ones start healthy. */
  sync(snapshot: Snapshot): void;
  probeResult(id: string, ok: boolean, error?: string): void;
  outcomes(counts: readonly OutcomeCounts[]): void;
  /** An upstream 429 told an instance to wait `ms`; true when that is news (a longer wait). */
  cool(id: string, ms: number): boolean;
  /** Another proxy instance was told so for an upstream key: every instance of that key waits. */
  coolQuota(quotaId: string, ms: number): void;
  /** Names an instance's upstream key (endpoint and a digest of the key) across proxy instances. */
  quotaOf(id: string): string | undefined;
  trial(id: string, result: 'ok' | 'failed' | 'declined', workerId: number): void;
  /** A worker left: the trials it held go to another one. */
  workerGone(workerId: number): void;
  tableFor(workerId: number): HealthTable;
  report(): InstanceHealthReport[];
  stop(): void;
}

export interface HealthRegistryOptions {
  log: Logger;
  /** Live worker ids, for handing out trial grants. */
  workerIds(): number[];
  /** Something a worker routes by changed: send every worker its table. */
  onChange(): void;
}

export function createHealthRegistry({ log, workerIds, onChange }: HealthRegistryOptions): HealthRegistry {
  const instances = new Map<string, InstanceHealth>();
  let breakerThreshold = 0;
  let cooldownMs = 30_000;
  let seq = 0;
  let grantCursor = 0;
  let changeQueued = false;

  // Several decisions often land in one tick (a batch of outcomes); the workers hear about them once.
  const changed = () => {
    seq += 1;
    if (changeQueued) return;
    changeQueued = true;
    queueMicrotask(() => {
      changeQueued = false;
      onChange();
    });
  };

  const describe = (state: InstanceHealth) => ({
    instance: state.spec.name,
    route: state.route,
    ...(state.spec.upstreamKey === undefined ? {} : { key: maskKey(state.spec.upstreamKey) }),
  });

  const timer = (at: number, action: () => void) => {
    const handle = setTimeout(action, Math.max(0, at - Date.now()));
    handle.unref();
    return handle;
  };
  const clearTimers = (state: InstanceHealth) => {
    clearTimeout(state.breakerTimer);
    clearTimeout(state.coolTimer);
  };

  const nextWorker = (after: number | undefined): number | undefined => {
    const ids = workerIds().sort((a, b) => a - b);
    if (ids.length === 0) return undefined;
    if (after === undefined) return ids[grantCursor++ % ids.length];
    return ids.find((id) => id > after) ?? ids[0];
  };

  const open = (state: InstanceHealth, message: string) => {
    state.breaker = 'open';
    state.trialHolder = undefined;
    state.openUntil = Date.now() + cooldownMs;
    log.warn({ ...describe(state), failures: state.consecutiveFailures, cooldownMs }, message);
    clearTimeout(state.breakerTimer);
    state.breakerTimer = timer(state.openUntil, () => halfOpen(state));
    changed();
  };

  const halfOpen = (state: InstanceHealth) => {
    if (state.breaker !== 'open') return;
    state.breaker = 'half-open';
    state.trialHolder = nextWorker(undefined);
    log.info({ ...describe(state), trialWorker: state.trialHolder }, 'circuit half-open, letting one trial request through');
    changed();
  };

  const close = (state: InstanceHealth) => {
    state.breaker = 'closed';
    state.trialHolder = undefined;
    state.consecutiveFailures = 0;
    log.info(describe(state), 'circuit closed, instance back in rotation');
    changed();
  };

  const coolInstance = (state: InstanceHealth, ms: number): boolean => {
    const until = Date.now() + ms;
    // A burst of 429s says the same thing many times: only a wait that ends a second later or more
    // is news worth a table to every worker.
    if (until < state.coolUntil + 1_000) return false;
    const wasCooling = state.coolUntil > Date.now();
    state.coolUntil = until;
    if (!wasCooling) log.warn({ ...describe(state), retryAfterMs: ms }, 'upstream rate limit, instance cooling');
    clearTimeout(state.coolTimer);
    state.coolTimer = timer(until, () => coolingEnded(state));
    changed();
    return true;
  };

  const coolingEnded = (state: InstanceHealth) => {
    state.coolUntil = 0;
    log.info(describe(state), 'instance cooled down, back in rotation');
    changed();
  };

  return {
    sync(snapshot) {
      breakerThreshold = snapshot.circuitBreaker.consecutiveFailures;
      cooldownMs = snapshot.circuitBreaker.cooldownMs;
      const seen = new Set<string>();
      for (const route of snapshot.routes) {
        for (const spec of route.instances) {
          seen.add(spec.id);
          const existing = instances.get(spec.id);
          if (existing !== undefined) {
            existing.spec = spec;
            existing.route = route.label;
            if (breakerThreshold === 0 && existing.breaker !== 'closed') {
              clearTimeout(existing.breakerTimer);
              existing.breaker = 'closed';
              existing.trialHolder = undefined;
            }
            continue;
          }
          instances.set(spec.id, {
            spec,
            route: route.label,
            probeUp: true,
            probeOkStreak: 0,
            probeFailStreak: 0,
            lastProbeError: undefined,
            breaker: 'closed',
            consecutiveFailures: 0,
            openUntil: 0,
            trialHolder: undefined,
            coolUntil: 0,
            breakerTimer: undefined,
            coolTimer: undefined,
            quotaId: quotaIdOf(spec),
          });
        }
      }
      for (const [id, state] of instances) {
        if (seen.has(id)) continue;
        clearTimers(state);
        instances.delete(id);
      }
      changed();
    },

    probeResult(id, ok, error) {
      const state = instances.get(id);
      if (state === undefined) return;
      const check = state.spec.healthCheck;
      const healthyThreshold = check?.healthyThreshold ?? 1;
      const unhealthyThreshold = check?.unhealthyThreshold ?? 1;
      if (ok) {
        state.probeOkStreak += 1;
        state.probeFailStreak = 0;
        state.lastProbeError = undefined;
        if (!state.probeUp && state.probeOkStreak >= healthyThreshold) {
          state.probeUp = true;
          log.info(describe(state), 'instance healthy');
          changed();
        }
        return;
      }
      state.probeFailStreak += 1;
      state.probeOkStreak = 0;
      state.lastProbeError = error;
      if (state.probeUp && state.probeFailStreak >= unhealthyThreshold) {
        state.probeUp = false;
        log.warn({ ...describe(state), error }, 'instance unhealthy');
        changed();
      }
    },

    outcomes(counts) {
      for (const [id, successes, failures, trailing] of counts) {
        const state = instances.get(id);
        // Reports for an instance in open or half-open state are from requests sent before it was
        // taken out: the trial alone decides.
        if (state === undefined || state.breaker !== 'closed') continue;
        if (successes > 0) state.consecutiveFailures = trailing;
        else state.consecutiveFailures += failures;
        if (breakerThreshold > 0 && state.consecutiveFailures >= breakerThreshold) open(state, 'circuit opened, instance ejected');
      }
    },

    cool(id, ms) {
      const state = instances.get(id);
      if (state === undefined) return false;
      return coolInstance(state, ms);
    },

    coolQuota(quotaId, ms) {
      for (const state of instances.values()) if (state.quotaId === quotaId) coolInstance(state, ms);
    },

    quotaOf: (id) => instances.get(id)?.quotaId,

    trial(id, result, workerId) {
      const state = instances.get(id);
      if (state === undefined || state.breaker !== 'half-open' || state.trialHolder !== workerId) return;
      if (result === 'ok') close(state);
      else if (result === 'failed') open(state, 'trial request failed, circuit opened again');
      else {
        state.trialHolder = nextWorker(workerId);
        changed();
      }
    },

    workerGone(workerId) {
      for (const state of instances.values()) {
        if (state.breaker !== 'half-open' || state.trialHolder !== workerId) continue;
        state.trialHolder = nextWorker(workerId);
        changed();
      }
    },

    tableFor(workerId) {
      const now = Date.now();
      const down: [string, number, 0 | 1][] = [];
      const trials: string[] = [];
      for (const [id, state] of instances) {
        // Nobody held the trial (the holder died with no other worker left, or none served when the
        // cooldown ended): the first worker asking for a table takes it.
        if (state.breaker === 'half-open' && state.trialHolder === undefined) state.trialHolder = workerId;
        let until = -1;
        if (!state.probeUp) until = 0;
        if (state.breaker === 'open' && until !== 0) until = Math.max(until, state.openUntil);
        // A half-open instance takes only the trial; the others are told to come back shortly.
        if (state.breaker === 'half-open' && until !== 0) until = Math.max(until, now + 1_000);
        const cooling = state.coolUntil > now;
        const onlyCooling = cooling && until === -1;
        if (cooling && until !== 0) until = Math.max(until, state.coolUntil);
        if (until !== -1) down.push([id, until, onlyCooling ? 1 : 0]);
        if (state.breaker === 'half-open' && state.trialHolder === workerId && state.probeUp && state.coolUntil <= now) trials.push(id);
      }
      return { seq, down, trials };
    },

    report() {
      const now = Date.now();
      return [...instances.entries()].map(([id, state]) => ({
        id,
        name: state.spec.name,
        route: state.route,
        available: state.probeUp && state.breaker === 'closed' && state.coolUntil <= now,
        probe: state.probeUp ? 'up' : 'down',
        lastProbeError: state.lastProbeError,
        breaker: state.breaker,
        consecutiveFailures: state.consecutiveFailures,
        coolingForMs: Math.max(0, state.coolUntil - now),
      }));
    },

    stop() {
      for (const state of instances.values()) clearTimers(state);
    },
  };
}

/**
 * The same upstream key at the same endpoint is the same provider quota on every proxy instance,
 * whatever route it serves there. A digest: the key itself never goes to the shared store.
 */
function quotaIdOf(spec: InstanceSpec): string | undefined {
  if (spec.upstreamKey === undefined) return undefined;
  return createHash('sha256').update(`${spec.endpoint}\0${spec.port}\0${spec.upstreamKey}`).digest('base64url').slice(0, 22);
}
