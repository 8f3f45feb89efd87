// Row 5: an expiry wave (many portals whose access tokens die at once, several concurrent calls
// each, one pool on each store, beside its floor: raw HTTP with a perfect single-flight) and the keep-alive sweep over many idle portals.

import { request as httpRequest } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { silentLogger } from '../src/logger.js';
import type { PortalClientPoolOptions } from '../src/pool/options.js';
import { PortalClientPool } from '../src/pool/pool.js';
import { oauthBaseFromServerEndpoint, tokenEndpointOf } from '../src/protocol/oauth-hosts.js';
import type { TokenStore } from '../src/store/token-store.js';
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

/**
 * The wave on one store. `observe` (the profile, bench/profile-wave.ts) may wrap the store before
 * the pool is built and returns what to call when the wave starts.
 */
export async function expiryWave(
  b24: FakeBitrix24,
  portals: number,
  callsEach: number,
  kind: StoreKind = 'postgres',
  oauthTimeoutMs?: number,
  observe?: (store: TokenStore) => () => void,
  extra: Partial<PortalClientPoolOptions> = {},
): Promise<WaveResult> {
  const bench = await createStore(kind);
  const started = observe?.(bench.store);
  const pool = new PortalClientPool({ ...b24.trust, store: bench.store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, max: portals, restrictionParams: OPEN_LIMITS, requestBudget: false, ...(oauthTimeoutMs === undefined ? {} : { oauthTimeoutMs }), ...extra });
  try {
    const members = Array.from({ length: portals }, () => b24.addPortal().memberId);
    await concurrently(members, 16, (m) => seedStore(bench.store, b24, m));
    await pool.ready();
    // Every client cached and used once with its live token, as in a running service (the SDK's
    // first request of a client sets it up; the floor's side has nothing to set up).
    await concurrently(members, 16, async (m) => (await pool.clientFor(m)).actions.v2.call.make({ method: 'profile' }));
    b24.expireAccessTokens();
    b24.resetStats();
    started?.();
    const startedAt = performance.now();
    const { failed, latencies } = await storm(
      members.flatMap((m) =>
        Array.from({ length: callsEach }, (_, i) => async () => (await (await pool.clientFor(m)).actions[i % 2 === 0 ? 'v2' : 'v3'].call.make({ method: 'profile' })).isSuccess),
      ),
    );
    const wallMs = performance.now() - startedAt;
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

type Post = (url: string, form: Record<string, string>) => Promise<{ status: number; body: Record<string, unknown> }>;

const FORM_HEADERS = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };

/** A form POST with the global `fetch`. */
const postFetch: Post = async (url, form) => {
  const answer = await fetch(url, { method: 'POST', headers: FORM_HEADERS, body: new URLSearchParams(form) });
  return { status: answer.status, body: (await answer.json()) as Record<string, unknown> };
};

/** A form POST with `node:http` and its global agent: the transport the SDK's axios uses. */
const postHttp: Post = (url, form) =>
  new Promise((resolve, reject) => {
    const body = new URLSearchParams(form).toString();
    const req = httpRequest(url, { method: 'POST', headers: { ...FORM_HEADERS, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });

/**
 * The wave's physical floor: the same portals and calls sent raw with a perfect per-portal
 * single-flight held in one Map (send, 401, one refresh, re-send), no store, no SDK, no lock.
 * `node:http` by default (the SDK's own transport, through axios); the global `fetch` was 1.5 to
 * 1.9 times slower than it on this machine (2 cores, Node 20), which would flatter the pool.
 */
export async function expiryFloor(b24: FakeBitrix24, portals: number, callsEach: number, transport: 'fetch' | 'http' = 'http'): Promise<WaveResult> {
  const tokenUrl = tokenEndpointOf(oauthBaseFromServerEndpoint(b24.serverEndpoint));
  const post = transport === 'fetch' ? postFetch : postHttp;
  interface Held {
    readonly endpoint: string;
    access: string;
    refresh: string;
    flight: Promise<void> | undefined;
  }
  const held = new Map<string, Held>();
  for (let i = 0; i < portals; i++) {
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);
    held.set(portal.memberId, { endpoint: portal.clientEndpoint, access: chain.accessToken, refresh: chain.refreshToken, flight: undefined });
  }
  const members = [...held.keys()];
  b24.expireAccessTokens();
  b24.resetStats();
  const refresh = (h: Held, stale: string): Promise<void> => {
    if (h.access !== stale) return Promise.resolve(); // another call already refreshed
    h.flight ??= post(tokenUrl, { grant_type: 'refresh_token', refresh_token: h.refresh, client_id: b24.clientId, client_secret: b24.clientSecret })
      .then(({ body }) => {
        h.access = String(body['access_token']);
        h.refresh = String(body['refresh_token']);
      })
      .finally(() => (h.flight = undefined));
    return h.flight;
  };
  const call = async (h: Held, i: number): Promise<boolean> => {
    const url = i % 2 === 0 ? `${h.endpoint}profile.json` : `${h.endpoint}api/profile`;
    for (let attempt = 0; attempt < 2; attempt++) {
      const token = h.access;
      const { status } = await post(url, { auth: token });
      if (status === 200) return true;
      if (status !== 401) return false;
      await refresh(h, token);
    }
    return false;
  };
  const started = performance.now();
  const { failed, latencies } = await storm(members.flatMap((m) => Array.from({ length: callsEach }, (_, i) => () => call(held.get(m)!, i))));
  const wallMs = performance.now() - started;
  return {
    refreshFailures: 0,
    revocations: 0,
    portals,
    calls: portals * callsEach,
    wallMs,
    refreshRequests: b24.stats.refreshRequests,
    reuse: b24.stats.refreshReuse,
    failed,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
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
