// A pool whose clock is 5 minutes or 1 hour ahead of or behind the OAuth host's (the stand-in's
// clock is shifted; the pool and the SDK keep the machine's): over several natural expiry cycles,
// no refresh loop, no call sent with an expired token (no 401 expired_token at the stand-in), and
// the same refresh count as without skew.
//
// Time: only `Date` is faked (timers stay real), so the machine clock can jump an hour between
// cycles while nothing is in flight; the stand-in reads it plus the skew.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';

const PORTALS = 3;
const CYCLES = 4;
const CALLS = 4;
/** A cycle: a little more than the access-token lifetime (3600 s), so every pair has expired. */
const CYCLE_MS = 3_700_000;

interface Outcome {
  readonly refreshRequests: number;
  readonly refreshSuccess: number;
  readonly refreshReuse: number;
  readonly expiredToken: number;
  readonly invalidToken: number;
  readonly failedCalls: number;
  readonly refreshesByPool: number;
}

async function run(skewSec: number): Promise<Outcome> {
  const start = Date.now();
  vi.useFakeTimers({ toFake: ['Date'], now: start });
  const b24 = await FakeBitrix24.start({ now: () => Date.now() + skewSec * 1000 });
  const store = new MemoryTokenStore();
  const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, random: () => 0.5 });
  try {
    const memberIds: string[] = [];
    for (let i = 0; i < PORTALS; i++) {
      const { memberId } = b24.addPortal();
      // Stored as an install would: the chain's times are the host's, the record's the machine's.
      await seedStore(store, b24, memberId);
      memberIds.push(memberId);
    }
    b24.resetStats();
    let failedCalls = 0;
    const storm = async (): Promise<void> => {
      const results = await Promise.allSettled(
        memberIds.flatMap((memberId) =>
          Array.from({ length: CALLS }, async (_, i) => {
            const client = await pool.clientFor(memberId);
            return (await client.actions[i % 2 === 0 ? 'v2' : 'v3'].call.make({ method: 'profile' })).isSuccess;
          }),
        ),
      );
      failedCalls += results.filter((r) => !(r.status === 'fulfilled' && r.value)).length;
    };
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      vi.setSystemTime(start + cycle * CYCLE_MS);
      await storm(); // every pair past its lifetime (after the first cycle): one refresh per portal
      vi.setSystemTime(start + cycle * CYCLE_MS + 1_800_000);
      await storm(); // mid-life: no refresh
    }
    return {
      refreshRequests: b24.stats.refreshRequests,
      refreshSuccess: b24.stats.refreshSuccess,
      refreshReuse: b24.stats.refreshReuse,
      expiredToken: b24.stats.rest.expiredToken,
      invalidToken: b24.stats.rest.invalidToken,
      failedCalls,
      refreshesByPool: pool.stats().refreshes,
    };
  } finally {
    await pool.close();
    await b24.close();
    vi.useRealTimers();
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe('a pool whose clock is off from the OAuth host', () => {
  it('without skew: one refresh per portal per expiry, none mid-life, no expired token sent', async () => {
    const outcome = await run(0);
    expect(outcome).toEqual({
      refreshRequests: PORTALS * (CYCLES - 1),
      refreshSuccess: PORTALS * (CYCLES - 1),
      refreshReuse: 0,
      expiredToken: 0,
      invalidToken: 0,
      failedCalls: 0,
      refreshesByPool: PORTALS * (CYCLES - 1),
    });
  });

  // The slot builds its SDK client with `expires - (window + hostClock.offsetSec)`: the host's
  // clock is learned from the stored record before that (RefreshCoordinator.windowFor).
  for (const [label, skewSec] of [
    ['5 minutes behind the host', 300],
    ['5 minutes ahead of the host', -300],
    ['1 hour behind the host', 3600],
    ['1 hour ahead of the host', -3600],
  ] as const) {
    it(`${label}: the same counts, no refresh loop, no call with an expired token`, async () => {
      const baseline = await run(0);
      const skewed = await run(skewSec);
      expect(skewed.expiredToken).toBe(0);
      expect(skewed.failedCalls).toBe(0);
      expect(skewed.refreshReuse).toBe(0);
      expect(skewed).toEqual(baseline);
    });
  }
});
