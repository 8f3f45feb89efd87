// Row 2: overhead per REST call. A `profile` call through the pool's client against a bare
// B24OAuth holding the same token, v2 and v3, interleaved call by call (the order alternating),
// both against the stand-in on loopback, the SDK's rate limiter opened wide for both. The pool's
// request budget is ON (a budget step from the store on every call, as in production) but never
// binding: its limits are far above what the row sends, and the stand-in enforces no limit.

import { B24OAuth } from '@bitrix24/b24jssdk';
import { silentLogger } from '../src/logger.js';
import { PortalClientPool } from '../src/pool/pool.js';
import { seedStore, type FakeBitrix24 } from '../src/testing/fake-bitrix24.js';
import { median, SHORT } from './lib.js';
import { createStore, type StoreKind } from './stores.js';

const OPEN = { rateLimit: { burstLimit: 1_000_000, drainRate: 1_000_000, adaptiveEnabled: false } };
/** A budget that is on (every call takes a step from the store) and never makes a call wait. */
const NEVER_BINDING = { ratePerSec: 1_000_000, burst: 1_000_000 };

export interface Overhead {
  readonly version: 'v2' | 'v3';
  readonly poolUs: number;
  readonly bareUs: number;
  readonly rounds: number;
  /** Calls of the pool's client that waited for a budget slot (0: the budget never bound). */
  readonly budgetWaits: number;
}

export async function restOverhead(b24: FakeBitrix24, kind: StoreKind): Promise<Overhead[]> {
  const bench = await createStore(kind);
  const store = bench.store;
  const portal = b24.addPortal();
  const { record } = await seedStore(store, b24, portal.memberId);
  const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, restrictionParams: OPEN, requestBudget: NEVER_BINDING });
  const pooled = await pool.clientFor(portal.memberId);
  const bare = new B24OAuth(
    {
      applicationToken: record.applicationToken ?? '',
      userId: record.userId ?? 0,
      memberId: record.memberId,
      accessToken: record.accessToken,
      refreshToken: record.refreshToken,
      expires: record.expires,
      expiresIn: 3600,
      scope: record.scope,
      domain: record.domain,
      clientEndpoint: record.clientEndpoint,
      serverEndpoint: record.serverEndpoint,
      status: 'L',
    },
    { clientId: b24.clientId, clientSecret: b24.clientSecret },
    { restrictionParams: OPEN },
  );
  const rounds = SHORT ? 40 : 1000;
  const warmup = SHORT ? 10 : 100;
  const out: Overhead[] = [];
  try {
    for (const version of ['v2', 'v3'] as const) {
      const time = async (client: B24OAuth): Promise<number> => {
        const started = performance.now();
        const result = await client.actions[version].call.make({ method: 'profile' });
        const elapsed = performance.now() - started;
        if (!result.isSuccess) throw new Error(`profile failed (${version})`);
        return elapsed;
      };
      const poolTimes: number[] = [];
      const bareTimes: number[] = [];
      for (let i = 0; i < warmup + rounds; i++) {
        // Interleaved, the order alternating, so drift of the shared machine hits both alike.
        const first = i % 2 === 0 ? pooled : bare;
        const second = first === pooled ? bare : pooled;
        const a = await time(first);
        const b = await time(second);
        if (i < warmup) continue;
        (first === pooled ? poolTimes : bareTimes).push(a);
        (second === pooled ? poolTimes : bareTimes).push(b);
      }
      out.push({ version, poolUs: median(poolTimes) * 1000, bareUs: median(bareTimes) * 1000, rounds, budgetWaits: pool.stats().budgetWaits });
    }
  } finally {
    await pool.close();
    await bench.dispose();
  }
  return out;
}
