// The GCRA step shared by the stores that compute it in JavaScript (memory, file), and the argument
// checks every store's acquire() runs. The SQL stores and the Redis script compute the same thing.

import type { BudgetGrant, BudgetSpec } from './token-store.js';

/** A checked {@link BudgetSpec}, in the numbers every implementation uses. */
export interface BudgetStep {
  /** ms per unit: 1000 / ratePerSec. */
  readonly intervalMs: number;
  /** burst * intervalMs: how far ahead of now the arrival time may run with no wait. */
  readonly spanMs: number;
  readonly cost: number;
  /** The longest wait that is still granted (a large finite number for "no limit"). */
  readonly maxWaitMs: number;
  /** The arrival time is raised to at least now + floorMs (a large negative number for none). */
  readonly floorMs: number;
}

/** A stand-in for "no limit" that every database takes as an ordinary double. */
export const NO_LIMIT_MS = 1e15;

const MAX_KEY_LENGTH = 512;

/** Checks a budget key. */
export function checkBudgetKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH || !key.isWellFormed()) {
    throw new TypeError(`budget key must be a well-formed non-empty string of at most ${MAX_KEY_LENGTH} characters`);
  }
}

/** Checks a spec and turns it into the step's numbers. */
export function budgetStep(spec: BudgetSpec): BudgetStep {
  if (typeof spec !== 'object' || spec === null) throw new TypeError('budget spec must be an object');
  const { ratePerSec, burst } = spec;
  const cost = spec.cost ?? 1;
  const maxWaitMs = spec.maxWaitMs ?? NO_LIMIT_MS;
  const pushBackMs = spec.pushBackMs ?? 0;
  if (typeof ratePerSec !== 'number' || !Number.isFinite(ratePerSec) || ratePerSec <= 0) {
    throw new TypeError('budget ratePerSec must be a finite number > 0');
  }
  if (typeof burst !== 'number' || !Number.isFinite(burst) || burst < 1) throw new TypeError('budget burst must be a finite number >= 1');
  if (typeof cost !== 'number' || !Number.isFinite(cost) || cost < 0) throw new TypeError('budget cost must be a finite number >= 0');
  if (typeof maxWaitMs !== 'number' || Number.isNaN(maxWaitMs) || maxWaitMs < 0) throw new TypeError('budget maxWaitMs must be a number >= 0');
  if (typeof pushBackMs !== 'number' || !Number.isFinite(pushBackMs) || pushBackMs < 0) {
    throw new TypeError('budget pushBackMs must be a finite number >= 0');
  }
  const intervalMs = 1000 / ratePerSec;
  return {
    intervalMs,
    spanMs: burst * intervalMs,
    cost,
    maxWaitMs: Math.min(maxWaitMs, NO_LIMIT_MS),
    // After a push-back the next unit is free at now + pushBackMs: the arrival time sits burst - 1 units past it.
    floorMs: pushBackMs > 0 ? pushBackMs + (burst - 1) * intervalMs : -NO_LIMIT_MS,
  };
}

/**
 * One GCRA step: from the stored arrival time `tat` (undefined for a fresh key) at `now`, the new
 * arrival time to store and the answer.
 */
export function gcra(tat: number | undefined, now: number, step: BudgetStep): { tat: number; grant: BudgetGrant } {
  // A stored time in the past means the same as now: the budget is full again.
  const base = Math.max(tat ?? now, now, now + step.floorMs);
  const next = base + step.cost * step.intervalMs;
  const waitMs = Math.max(0, next - step.spanMs - now);
  const granted = waitMs <= step.maxWaitMs;
  return { tat: granted ? next : base, grant: { waitMs, granted } };
}

/** How long after `now` a stored arrival time still matters (later it reads as a fresh key). */
export function budgetTtlMs(tat: number, now: number): number {
  return Math.max(1, Math.ceil(tat - now));
}
