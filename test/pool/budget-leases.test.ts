// Leases cannot let a fleet pass a portal's limit (issue 23 item 4): several budgets (one per
// worker) on one store, requests arriving at random, some with a deadline (a step that leases
// nothing), leased slots used as late as their window allows; every send is replayed through
// Bitrix24's leaky bucket (drain `ratePerSec`, block past `burst`) and must never overflow it.
// A model on a manual clock, so counts only and every run the same.
import { describe, expect, it } from 'vitest';
import { RequestBudget, leaseMarginOf, withRequestDeadline, type ProbeFlags } from '../../src/budget/budget.js';
import { ManualClock } from '../../src/clock.js';
import { RateLimitedError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { RequestBudgetLimits } from '../../src/budget/plan.js';

/** A small seeded generator (mulberry32), so a failing case can be run again. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The most the bucket ever held when `sends` (ms) reach it in order, draining `limits.ratePerSec`. */
function peakLevel(sends: readonly number[], limits: RequestBudgetLimits): number {
  let level = 0;
  let at = Number.NEGATIVE_INFINITY;
  let peak = 0;
  for (const t of [...sends].sort((x, y) => x - y)) {
    level = Math.max(0, level - ((t - at) / 1000) * limits.ratePerSec) + 1;
    at = t;
    peak = Math.max(peak, level);
  }
  return peak;
}

function budgetOn(store: MemoryTokenStore, clock: ManualClock, limits: RequestBudgetLimits): RequestBudget {
  return new RequestBudget({
    store,
    limitsFor: () => limits,
    headroom: 1,
    operatingHeadroom: 0.8,
    maxWaitMs: Number.POSITIVE_INFINITY,
    localShare: 1,
    clock,
    logger: silentLogger,
    emit: () => undefined,
  });
}

interface Outcome {
  readonly sends: number[];
  readonly steps: number;
  readonly refused: number;
}

/**
 * `workers` budgets on one store; `rounds` times the clock moves on (mostly by up to `maxGapMs`, at
 * times long enough for the bucket to empty) and requests start on random workers: a few, or now
 * and then a burst's worth on one worker (the case a lease held unused until late must not spoil),
 * a share of them with a deadline of up to `maxGapMs` (steps that lease nothing).
 */
async function fleet(limits: RequestBudgetLimits, seed: number, workers: number, rounds: number, maxGapMs: number): Promise<Outcome> {
  const next = random(seed);
  const clock = new ManualClock(1_000_000);
  const store = new MemoryTokenStore({ now: () => clock.now() });
  let steps = 0;
  const acquire = store.acquire.bind(store);
  store.acquire = (key, spec) => {
    if (key.startsWith('rest:')) steps++;
    return acquire(key, spec);
  };
  const budgets = Array.from({ length: workers }, () => budgetOn(store, clock, limits));
  const sends: number[] = [];
  let refused = 0;
  const pending: Promise<void>[] = [];
  const send = async (budget: RequestBudget, deadlineMs: number | undefined): Promise<void> => {
    let probe: ProbeFlags;
    try {
      probe = deadlineMs === undefined ? await budget.beforeRequest('m', undefined) : await withRequestDeadline({ maxWaitMs: deadlineMs }, () => budget.beforeRequest('m', undefined));
    } catch (error) {
      if (!(error instanceof RateLimitedError)) throw error;
      refused++;
      return;
    }
    sends.push(clock.now()); // it leaves (and reaches the bucket) the moment the budget lets it
    budget.settle('m', undefined, probe, 'ok');
  };
  const emptyMs = (limits.burst / limits.ratePerSec) * 1000;
  for (let round = 0; round < rounds; round++) {
    await clock.advance(next() < 0.05 ? emptyMs : next() * maxGapMs);
    const burst = next() < 0.05;
    const arrivals = burst ? Math.ceil(next() * Math.min(limits.burst, 200)) : Math.floor(next() * 4);
    const one = budgets[Math.floor(next() * workers)]!;
    for (let i = 0; i < arrivals; i++) {
      const budget = burst ? one : budgets[Math.floor(next() * workers)]!;
      pending.push(send(budget, next() < 0.2 ? next() * maxGapMs : undefined));
    }
  }
  // Let every waiting request leave.
  while (clock.pending > 0) await clock.advance(maxGapMs);
  await Promise.all(pending);
  return { sends, steps, refused };
}

describe('leases against the portal limit (model, manual clock)', () => {
  it('the margin: one unit for the standard plan (a lease window of one interval), 2% of a large burst, none for a burst of 1', () => {
    expect(leaseMarginOf(50)).toBe(1);
    expect(leaseMarginOf(250)).toBe(5);
    expect(leaseMarginOf(1_000_000)).toBe(20_000);
    expect(leaseMarginOf(1)).toBe(0);
  });

  const cases: [string, RequestBudgetLimits, number][] = [
    ['the standard plan (2/s, burst 50)', { ratePerSec: 2, burst: 50 }, 700],
    ['10/s, burst 10', { ratePerSec: 10, burst: 10 }, 150],
    ['1,000/s, burst 100 (a lease window of 2 intervals)', { ratePerSec: 1000, burst: 100 }, 3],
    ['100,000/s, burst 500 (a lease window of 10 intervals)', { ratePerSec: 1e5, burst: 500 }, 0.15],
    ['a million a second and as much burst (bench row 2)', { ratePerSec: 1e6, burst: 1e6 }, 0.03],
  ];
  it.each(cases)('%s: 4 workers never overflow the bucket, and leases save steps', async (_name, limits, maxGapMs) => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const { sends, steps, refused } = await fleet(limits, seed, 4, 400, maxGapMs);
      expect(sends.length + refused).toBeGreaterThan(400);
      expect(peakLevel(sends, limits), `seed ${seed}`).toBeLessThanOrEqual(limits.burst + 1e-9);
      expect(steps, `seed ${seed}: steps for ${sends.length} sends`).toBeLessThan(sends.length + refused);
    }
  }, 60_000);

  it('the worst case: one worker uses its whole lease (10 slots) at the end of its window while another sends a full burst (unleased) at that moment', async () => {
    const limits = { ratePerSec: 1000, burst: 500 }; // margin 10: a lease window of 10 ms, leases of up to 10 slots
    const clock = new ManualClock(1_000_000);
    const store = new MemoryTokenStore({ now: () => clock.now() });
    const costs: number[] = [];
    const acquire = store.acquire.bind(store);
    store.acquire = (key, spec) => {
      if (key.startsWith('rest:')) costs.push(spec.cost ?? 1);
      return acquire(key, spec);
    };
    const leasing = budgetOn(store, clock, limits);
    const bursting = budgetOn(store, clock, limits);
    const sends: number[] = [];
    const send = async (budget: RequestBudget, deadlineMs?: number): Promise<void> => {
      const probe = deadlineMs === undefined ? await budget.beforeRequest('m', undefined) : await withRequestDeadline({ maxWaitMs: deadlineMs }, () => budget.beforeRequest('m', undefined));
      sends.push(clock.now());
      budget.settle('m', undefined, probe, 'ok');
    };
    // One request every 0.9 ms on the first worker (below the rate: the bucket stays nearly empty)
    // until a step leases 10 slots, then it stops: it holds 10 slots of now.
    while (costs.at(-1) !== 11) {
      await clock.advance(0.9);
      await send(leasing);
    }
    // Just inside the window: the 4 leased slots leave late, and the other worker sends all it is
    // granted at once (a deadline of 0: steps that lease nothing).
    await clock.advance(10 - 1e-6);
    const late = Array.from({ length: 10 }, () => send(leasing));
    const burst = Array.from({ length: limits.burst }, () => send(bursting, 0).catch((error: unknown) => {
      if (!(error instanceof RateLimitedError)) throw error;
    }));
    await Promise.all([...late, ...burst]);
    expect(costs).toContain(11);
    expect(sends.filter((t) => t === clock.now()).length).toBeGreaterThan(limits.burst / 2);
    expect(peakLevel(sends, limits)).toBeLessThanOrEqual(limits.burst + 1e-9);
  });
});
