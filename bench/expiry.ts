// Row 5: an expiry wave (many portals whose access tokens die at once, several concurrent calls
// each, one pool on PostgreSQL) and the keep-alive sweep over many idle portals.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { silentLogger } from '../src/logger.js';
import { PortalClientPool } from '../src/pool/pool.js';
import { seedStore, type FakeBitrix24 } from '../src/testing/fake-bitrix24.js';
import { concurrently, percentile } from './lib.js';
import { OPEN_LIMITS, storm } from './storm.js';
import { createStore, type StoreKind } from './stores.js';

export interface WaveResult {
  /** The pool's counters: refreshes that failed (transient: network, timeout) and chains revoked. */
  readonly refreshFailures: number;
  readonly revocations: number;
  readonly portals: number;
  readonly calls: number;
  readonly wallMs: number;
  readonly refreshRequests: number;
  readonly reuse: number;
  readonly failed: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export async function expiryWave(b24: FakeBitrix24, portals: number, callsEach: number, kind: StoreKind = 'postgres', oauthTimeoutMs?: number): Promise<WaveResult> {
  const bench = await createStore(kind);
  const pool = new PortalClientPool({ ...b24.trust, store: bench.store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, max: portals, restrictionParams: OPEN_LIMITS, requestBudget: false, ...(oauthTimeoutMs === undefined ? {} : { oauthTimeoutMs }) });
  try {
    const members = Array.from({ length: portals }, () => b24.addPortal().memberId);
    await concurrently(members, 16, (m) => seedStore(bench.store, b24, m));
    await pool.ready();
    await concurrently(members, 16, (m) => pool.clientFor(m)); // every client cached, as in a running service
    b24.expireAccessTokens();
    b24.resetStats();
    const started = performance.now();
    const { failed, latencies } = await storm(
      members.flatMap((m) =>
        Array.from({ length: callsEach }, (_, i) => async () => (await (await pool.clientFor(m)).actions[i % 2 === 0 ? 'v2' : 'v3'].call.make({ method: 'profile' })).isSuccess),
      ),
    );
    const wallMs = performance.now() - started;
    const stats = pool.stats();
    return {
      refreshFailures: stats.refreshFailures,
      revocations: stats.revocations,
      portals,
      calls: portals * callsEach,
      wallMs,
      refreshRequests: b24.stats.refreshRequests,
      reuse: b24.stats.refreshReuse,
      failed,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
    };
  } finally {
    await pool.close();
    await bench.dispose();
  }
}

export interface SweepBench {
  readonly portals: number;
  readonly wallMs: number;
  readonly refreshed: number;
  readonly refreshRequests: number;
  readonly failed: number;
  readonly heapBeforeMiB: number;
  readonly peakHeapMiB: number;
  /** The largest live heap (after a full collection) seen when the sweep asked for a page. */
  readonly peakLiveHeapMiB: number;
  /** Pages the sweep asked for. */
  readonly pages: number;
}

/** A full garbage collection (the flag is set at run time, so `npm run bench` needs no node option). */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Refreshes at once during the sweep (the library's default is 4; a sweep is background work). */
export const SWEEP_CONCURRENCY = 16;

export async function sweepIdle(b24: FakeBitrix24, portals: number): Promise<SweepBench> {
  const bench = await createStore('postgres');
  const pool = new PortalClientPool({ ...b24.trust, store: bench.store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger });
  try {
    const idleSince = Date.now() - 30 * 86_400_000;
    const members = Array.from({ length: portals }, () => b24.addPortal().memberId);
    await concurrently(members, 16, (m) => seedStore(bench.store, b24, m, { record: { chainUpdatedAt: idleSince, updatedAt: idleSince } }));
    await pool.ready();
    b24.resetStats();
    const gc = collector();
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    // What the sweep holds: the live heap each time it asks for the next page.
    let peakLive = heapBefore;
    let pages = 0;
    const list = bench.store.list!.bind(bench.store);
    bench.store.list = (options) => {
      pages++;
      gc();
      peakLive = Math.max(peakLive, process.memoryUsage().heapUsed);
      return list(options);
    };
    let peak = heapBefore;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    }, 10);
    const started = performance.now();
    const result = await pool.sweep({ idleDays: 20, concurrency: SWEEP_CONCURRENCY });
    const wallMs = performance.now() - started;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().heapUsed);
    return {
      portals,
      wallMs,
      refreshed: result.refreshed,
      refreshRequests: b24.stats.refreshRequests,
      failed: result.failed,
      heapBeforeMiB: heapBefore / 2 ** 20,
      peakHeapMiB: peak / 2 ** 20,
      peakLiveHeapMiB: peakLive / 2 ** 20,
      pages,
    };
  } finally {
    await pool.close();
    await bench.dispose();
  }
}
