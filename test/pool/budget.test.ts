// The pool's request budget against a stand-in that enforces Bitrix24's leaky bucket: one budget per
// portal for v2, v3 and batch; a bucket another app filled costs a 503 per worker, not per call;
// portals never wait for each other. Counts only, never times.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RateLimitedError, StoreError, findPortalTokensError } from '../../src/errors.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import type { PoolStats } from '../../src/pool-events.js';
import { withRequestDeadline } from '../../src/budget/budget.js';
import { FileTokenStore } from '../../src/store/file/store.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { basicStore, recordingLogger, seedPortal } from './helpers.js';
import { nodeArgs } from '../support/children.js';

// The stand-in's bucket and the pool's budget: small numbers so a test takes a second or two.
const LIMITS = { ratePerSec: 10, burst: 10 };

let b24: FakeBitrix24;
let dir: string;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
  dir = await mkdtemp(join(tmpdir(), 'b24pt-budget-'));
});
afterAll(async () => {
  await b24.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  b24.limitRequests(null);
  b24.resetStats();
});

function newPool(store: TokenStore, extra: Partial<ConstructorParameters<typeof PortalClientPool>[0]> = {}): PortalClientPool {
  return new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, requestBudget: LIMITS, logger: recordingLogger(), ...extra });
}

async function seeded(store: TokenStore): Promise<string> {
  const portal = b24.addPortal();
  await seedPortal(store, b24, portal.memberId, b24.issueChain(portal.memberId));
  return portal.memberId;
}

describe('the stand-in enforces the documented bucket', () => {
  it('answers 503 QUERY_LIMIT_EXCEEDED past the burst and after fillBucket, and nothing when off', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const pool = newPool(store, { requestBudget: false });
    const b = await pool.clientFor(memberId);
    b24.limitRequests({ drainPerSec: 1, burst: 3 });
    const answers = await Promise.allSettled(Array.from({ length: 6 }, () => b.actions.v2.call.make({ method: 'profile' })));
    expect(b24.stats.rest.queryLimitExceeded).toBeGreaterThanOrEqual(1);
    expect(answers.length).toBe(6);
    b24.resetStats();
    b24.fillBucket(memberId);
    expect(b24.bucketLevel(memberId)).toBeGreaterThan(2.5);
    b24.limitRequests(null);
    await b.actions.v2.call.make({ method: 'profile' });
    expect(b24.stats.rest.queryLimitExceeded).toBe(0);
    expect(() => b24.fillBucket(memberId)).toThrow(/limitRequests/);
    await pool.close();
  });
});

describe('PortalClientPool request budget', () => {
  it('mixed v2, v3 and batch calls of one process stay within one budget: no 503 at the stand-in', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const pool = newPool(store);
    const b = await pool.clientFor(memberId);
    b24.limitRequests({ drainPerSec: LIMITS.ratePerSec, burst: LIMITS.burst });
    b24.resetStats();
    const calls = Array.from({ length: 30 }, (_, i) => {
      if (i % 3 === 0) return b.actions.v2.call.make({ method: 'profile' });
      if (i % 3 === 1) return b.actions.v3.call.make({ method: 'profile' });
      return b.actions.v2.batch.make({ calls: [['profile', {}], ['profile', {}]] });
    });
    const results = await Promise.all(calls);
    expect(results.every((r) => r.isSuccess)).toBe(true);
    expect(b24.stats.rest.queryLimitExceeded).toBe(0);
    expect((b24.stats.restByMethod['profile'] ?? 0) + (b24.stats.restByMethod['batch'] ?? 0)).toBe(30);
    const stats = pool.stats();
    // Burst 9 (the documented 10, less the unit every step leaves free) at once; the other 21 waited for a slot.
    expect(stats.budgets[memberId]?.waits).toBeGreaterThanOrEqual(18);
    expect(stats.budgetWaits).toBe(stats.budgets[memberId]?.waits);
    expect(stats.queryLimitExceeded).toBe(0);
    await pool.close();
  }, 30_000);

  it('a 503 that still comes back pushes the budget back, and the call is retried and succeeds', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const pool = newPool(store);
    const pushBacks: number[] = [];
    pool.on('budget-push-back', ({ ms }) => pushBacks.push(ms));
    const b = await pool.clientFor(memberId);
    b24.limitRequests({ drainPerSec: LIMITS.ratePerSec, burst: LIMITS.burst });
    b24.fillBucket(memberId);
    b24.resetStats();
    const results = await Promise.all(Array.from({ length: 5 }, () => b.actions.v2.call.make({ method: 'profile' })));
    expect(results.every((r) => r.isSuccess)).toBe(true);
    const stats = pool.stats();
    // The first request goes alone on a portal it has not heard from, so the full bucket costs one 503.
    expect(b24.stats.rest.queryLimitExceeded).toBe(1);
    expect(stats.queryLimitExceeded).toBe(1);
    expect(stats.budgetPushBacks).toBe(1);
    expect(pushBacks).toHaveLength(1);
    await pool.close();
  }, 30_000);

  it('a wait past maxBudgetWaitMs or a caller deadline fails at once with RateLimitedError', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const pool = newPool(store, { requestBudget: { ratePerSec: 1, burst: 2 }, budgetHeadroom: 1, maxBudgetWaitMs: 60_000 });
    const b = await pool.clientFor(memberId);
    await Promise.all([b.actions.v2.call.make({ method: 'profile' }), b.actions.v2.call.make({ method: 'profile' })]);
    const error = await withRequestDeadline({ maxWaitMs: 100 }, () => b.actions.v2.call.make({ method: 'profile' })).catch((e: unknown) => e);
    const typed = findPortalTokensError(error);
    expect(typed).toBeInstanceOf(RateLimitedError);
    expect((typed as RateLimitedError).reason).toBe('rate');
    expect((typed as RateLimitedError).waitMs).toBeGreaterThan(100);
    expect(pool.stats().budgets[memberId]?.rateLimited).toBe(1);
    await pool.close();
  });

  it('a method past its share of the operating time waits cluster-wide (here: refused at its deadline); other methods do not', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const pool = newPool(store);
    const b = await pool.clientFor(memberId);
    b24.setOperatingTime('profile', 100);
    try {
      // 4 answers of 100 s each: past 80% of 480 s.
      for (let i = 0; i < 4; i++) {
        await b.actions.v2.call.make({ method: 'profile' });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const error = await withRequestDeadline({ maxWaitMs: 1_000 }, () => b.actions.v2.call.make({ method: 'profile' })).catch((e: unknown) => e);
      const typed = findPortalTokensError(error);
      expect(typed).toBeInstanceOf(RateLimitedError);
      expect((typed as RateLimitedError).reason).toBe('operating');
      // (400 - 384) s of operating time drain at 0.8 s a second: about 20 s.
      expect((typed as RateLimitedError).waitMs).toBeGreaterThan(10_000);
      const other = await withRequestDeadline({ maxWaitMs: 1_000 }, () => b.actions.v2.call.make({ method: 'app.info' }));
      expect(other.isSuccess).toBe(true);
    } finally {
      b24.setOperatingTime('profile', null);
      await pool.close();
    }
  });

  it('ten portals: each gets its own budget, and a portal with no load waits for nobody', async () => {
    const store = new MemoryTokenStore();
    const members: string[] = [];
    for (let i = 0; i < 10; i++) members.push(await seeded(store));
    // A fixed share: this test is about portals' separate budgets, nine loaded at once on a shared
    // machine at 5 times Bitrix24's rate (one interval of margin is 100 ms here); the learned share
    // is tested in budget-learned.test.ts.
    const pool = newPool(store, { budgetHeadroom: 0.8 });
    const clients = await Promise.all(members.map((m) => pool.clientFor(m)));
    b24.limitRequests({ drainPerSec: LIMITS.ratePerSec, burst: LIMITS.burst });
    b24.resetStats();
    const loaded = clients.slice(0, 9);
    const storm = Promise.all(loaded.flatMap((b) => Array.from({ length: 16 }, () => b.actions.v2.call.make({ method: 'profile' }))));
    const quiet = await clients[9]!.actions.v2.call.make({ method: 'profile' });
    await storm;
    expect(quiet.isSuccess).toBe(true);
    const stats = pool.stats();
    expect(b24.stats.rest.queryLimitExceeded).toBe(0);
    expect(stats.budgets[members[9]!]?.waits ?? 0).toBe(0);
    for (const memberId of members.slice(0, 9)) {
      // Each portal's own burst of 7 (80% of 10, less the unit every step leaves free) went at once;
      // its other 9 waited for its own slots only (one more when a lone request leased a slot).
      expect(stats.budgets[memberId]?.waits).toBeGreaterThanOrEqual(6);
      expect(stats.budgets[memberId]?.waits).toBeLessThanOrEqual(10);
    }
    await pool.close();
  }, 30_000);

  it('leases slots while the budget does not bind: 3 pools x 30 calls one after another on one store take far fewer budget steps than calls, and no 503', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const acquire = store.acquire.bind(store);
    let steps = 0;
    store.acquire = (key, spec) => {
      if (key.startsWith('rest:')) steps++;
      return acquire(key, spec);
    };
    // 200 a second and a burst of 1,000: a margin of 20 units, a lease window of 100 ms (leaseMarginOf).
    const wide = { ratePerSec: 200, burst: 1000 };
    const pools = [newPool(store, { requestBudget: wide }), newPool(store, { requestBudget: wide }), newPool(store, { requestBudget: wide })];
    const clients = await Promise.all(pools.map((pool) => pool.clientFor(memberId)));
    b24.limitRequests({ drainPerSec: wide.ratePerSec, burst: wide.burst });
    b24.resetStats();
    steps = 0;
    const ok = await Promise.all(
      clients.map(async (b) => {
        let n = 0;
        for (let i = 0; i < 30; i++) if ((await b.actions.v2.call.make({ method: 'profile' })).isSuccess) n++;
        return n;
      }),
    );
    expect(ok).toEqual([30, 30, 30]);
    expect(b24.stats.rest.queryLimitExceeded, 'the fleet never passed the portal limit').toBe(0);
    // One step per call without leases (90); leased slots serve most calls locally.
    expect(steps).toBeLessThan(45);
    console.info(`[budget] ${steps} budget steps for 90 calls`);
    for (const pool of pools) await pool.close();
  }, 60_000);

  it("a budget step the database refuses reaches the caller as the store's typed StoreError, whatever the SDK wraps it in", async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    store.acquire = () =>
      Promise.reject(
        new StoreError('PostgreSQL token store failed to take a budget step for: the database could not be reached (SQLSTATE 53300)', { transient: true }),
      );
    const pool = newPool(store);
    const b = await pool.clientFor(memberId);
    const failure = await b.actions.v2.call.make({ method: 'profile' }).then(
      (result) => result,
      (error: unknown) => error,
    );
    const typed = findPortalTokensError(failure);
    expect(typed, `caught ${String((failure as { code?: unknown }).code ?? failure)}`).toBeInstanceOf(StoreError);
    expect(typed?.code).toBe('STORE_FAILURE');
    expect((typed as StoreError).transient).toBe(true);
    await pool.close();
  }, 30_000);

  it('without a shared budget in the store it keeps a local one and warns once', async () => {
    const inner = new MemoryTokenStore();
    const memberId = await seeded(inner);
    const store = basicStore(inner, { list: false });
    const logger = recordingLogger();
    const pool = newPool(store, { logger });
    const b = await pool.clientFor(memberId);
    b24.limitRequests({ drainPerSec: LIMITS.ratePerSec, burst: LIMITS.burst });
    await Promise.all(Array.from({ length: 12 }, () => b.actions.v2.call.make({ method: 'profile' })));
    expect(b24.stats.rest.queryLimitExceeded).toBe(0);
    expect(logger.lines.filter((line) => line.includes('no shared request budget'))).toHaveLength(1);
    await pool.close();
  }, 30_000);
});

describe('429 OPERATION_TIME_LIMIT and the portal plan', () => {
  const sum = (pools: PortalClientPool[], memberId: string, field: 'operationTimeLimit' | 'operatingWaits'): number =>
    pools.reduce((total, pool) => total + (pool.stats().budgets[memberId]?.[field] ?? 0), 0);

  it('a blocked method is held for every worker until its reset: 4 pools on one store, the 429s bounded by the pools, not the 80 calls', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const pools = Array.from({ length: 4 }, () => newPool(store));
    const clients = await Promise.all(pools.map((pool) => pool.clientFor(memberId)));
    // The portal is warm (another method answered): only the method's own gate and account hold it.
    await Promise.all(clients.map((b) => b.actions.v2.call.make({ method: 'user.current' })));
    b24.resetStats();
    b24.exhaustOperatingTime(memberId, 'profile', { seconds: 2 });
    const calls = clients.flatMap((b) => Array.from({ length: 20 }, (_, i) => b.actions[i % 2 === 0 ? 'v2' : 'v3'].call.make({ method: 'profile' })));
    const results = await Promise.all(calls);
    expect(results.every((r) => r.isSuccess)).toBe(true);
    expect(b24.stats.rest.operationTimeLimit).toBeGreaterThanOrEqual(1);
    expect(b24.stats.rest.operationTimeLimit).toBeLessThanOrEqual(pools.length);
    expect(sum(pools, memberId, 'operationTimeLimit')).toBe(b24.stats.rest.operationTimeLimit);
    expect(sum(pools, memberId, 'operatingWaits')).toBeGreaterThanOrEqual(pools.length);
    // Other methods of the portal were never held.
    const other = await withRequestDeadline({ maxWaitMs: 2_000 }, () => clients[0]!.actions.v2.call.make({ method: 'user.current' }));
    expect(other.isSuccess).toBe(true);
    await Promise.all(pools.map((pool) => pool.close()));
  }, 30_000);

  it('without operating_reset_at in the 429 the method is held a whole window; a caller deadline gets RateLimitedError at once', async () => {
    const store = new MemoryTokenStore();
    const memberId = await seeded(store);
    const pool = newPool(store);
    const pushBacks: { ms: number; reason: string | undefined }[] = [];
    pool.on('budget-push-back', ({ ms, reason }) => pushBacks.push({ ms, reason }));
    const b = await pool.clientFor(memberId);
    b24.exhaustOperatingTime(memberId, 'profile', { resetAtInAnswer: false });
    try {
      const error = await withRequestDeadline({ maxWaitMs: 1_000 }, () => b.actions.v2.call.make({ method: 'profile' })).catch((e: unknown) => e);
      const typed = findPortalTokensError(error);
      expect(typed).toBeInstanceOf(RateLimitedError);
      expect((typed as RateLimitedError).reason).toBe('operating');
      expect((typed as RateLimitedError).waitMs).toBeGreaterThan(590_000);
      expect(b24.stats.rest.operationTimeLimit).toBe(1);
      expect(pushBacks).toEqual([{ ms: expect.any(Number) as number, reason: 'operating' }]);
      expect(pool.stats().budgets[memberId]).toMatchObject({ operationTimeLimit: 1, pushBacks: 1, rateLimited: 1 });
    } finally {
      b24.exhaustOperatingTime(memberId, 'profile', { seconds: 0 });
      await pool.close();
    }
  });

  it('the default budget follows the plan an app.info answer names (alone or in the SDK helper\'s batch); requestBudget still wins', async () => {
    const store = new MemoryTokenStore();
    const standard = await seeded(store);
    const enterprise = await seeded(store);
    const viaBatch = await seeded(store);
    const pool = newPool(store, { requestBudget: undefined });
    const explicit = newPool(store, { requestBudget: (memberId) => (memberId === enterprise ? LIMITS : undefined) });
    b24.onMethod('app.info', ({ portal }) => ({
      result: portal.memberId === standard ? { LICENSE: 'en_project', LICENSE_TYPE: 'project', LICENSE_FAMILY: 'project' } : { LICENSE: 'ru_ent250', LICENSE_TYPE: 'ent250', LICENSE_FAMILY: 'ent' },
    }));
    try {
      for (const memberId of [standard, enterprise]) {
        await (await pool.clientFor(memberId)).actions.v2.call.make({ method: 'app.info' });
        await (await explicit.clientFor(memberId)).actions.v2.call.make({ method: 'app.info' });
      }
      await (await pool.clientFor(viaBatch)).actions.v2.batch.make({ calls: { get_app: ['app.info', {}], get_profile: ['profile', {}] } });
      b24.resetStats();
      // 48 calls at once: past the standard burst (40 with the headroom), within the Enterprise one (200).
      const burst = async (p: PortalClientPool, memberId: string, calls = 48): Promise<number> => {
        const b = await p.clientFor(memberId);
        await Promise.all(Array.from({ length: calls }, () => b.actions.v2.call.make({ method: 'profile' })));
        return p.stats().budgets[memberId]?.waits ?? 0;
      };
      expect(await burst(pool, enterprise)).toBe(0);
      expect(await burst(pool, viaBatch)).toBe(0);
      expect(await burst(explicit, enterprise, 12)).toBeGreaterThan(0); // requestBudget named 10/s, burst 10
    } finally {
      b24.onMethod('app.info', () => ({ result: { LICENSE: 'en_project', LICENSE_TYPE: 'project', LICENSE_FAMILY: 'project' } }));
      await pool.close();
      await explicit.close();
    }
  }, 30_000);
});

interface WorkerOutcome {
  ok: number;
  failed: number;
  stats: PoolStats;
}

function startWorker(memberId: string, calls: number, headroom?: number) {
  const worker = fileURLToPath(new URL('./fixtures/budget-worker.ts', import.meta.url));
  const args = [...nodeArgs(worker), dir, memberId, String(calls), String(LIMITS.ratePerSec), String(LIMITS.burst), ...(headroom === undefined ? [] : [String(headroom)])];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret, B24_URL: b24.url },
    stdio: 'pipe',
  });
  const iterator = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return {
    child,
    nextLine: async (): Promise<string> => {
      const { value, done } = await iterator.next();
      if (done) throw new Error(`worker ended early: ${stderr}`);
      return value;
    },
  };
}

describe('PortalClientPool request budget across processes', () => {
  it('4 processes on a bucket another app filled: the 503s are bounded by the workers, not the 80 calls', async () => {
    const store = new FileTokenStore({ directory: dir });
    const memberId = await seeded(store);
    const workers = Array.from({ length: 4 }, () => startWorker(memberId, 20));
    for (const w of workers) expect(await w.nextLine()).toBe('ready');
    b24.limitRequests({ drainPerSec: LIMITS.ratePerSec, burst: LIMITS.burst });
    b24.fillBucket(memberId);
    b24.resetStats();
    for (const w of workers) w.child.stdin.write('go\n');
    const outcomes = await Promise.all(workers.map(async (w) => JSON.parse(await w.nextLine()) as WorkerOutcome));
    expect(outcomes.reduce((sum, o) => sum + o.ok, 0)).toBe(80);
    expect(outcomes.reduce((sum, o) => sum + o.failed, 0)).toBe(0);
    expect(b24.stats.rest.queryLimitExceeded).toBeGreaterThanOrEqual(1);
    // One per worker's first request, with room for a stray one each on a busy machine: never one per call.
    expect(b24.stats.rest.queryLimitExceeded).toBeLessThanOrEqual(2 * 4);
    expect(outcomes.reduce((sum, o) => sum + o.stats.budgetPushBacks, 0)).toBe(b24.stats.rest.queryLimitExceeded);
  }, 60_000);

  it('4 processes x 20 calls on a fresh bucket share one budget: no 503', async () => {
    const store = new FileTokenStore({ directory: dir });
    const memberId = await seeded(store);
    // A fixed share: at 5 times Bitrix24's rate one unit of margin is 100 ms, less than four
    // processes' event loops lag on a shared machine. This test is about sharing one budget; the
    // learned default at Bitrix24's own numbers is bench row 7 (0 answers of 503).
    const workers = Array.from({ length: 4 }, () => startWorker(memberId, 20, 0.8));
    for (const w of workers) expect(await w.nextLine()).toBe('ready');
    b24.limitRequests({ drainPerSec: LIMITS.ratePerSec, burst: LIMITS.burst });
    b24.resetStats();
    for (const w of workers) w.child.stdin.write('go\n');
    const outcomes = await Promise.all(workers.map(async (w) => JSON.parse(await w.nextLine()) as WorkerOutcome));
    expect(outcomes.reduce((sum, o) => sum + o.ok, 0)).toBe(80);
    expect(b24.stats.rest.queryLimitExceeded).toBe(0);
  }, 60_000);
});
