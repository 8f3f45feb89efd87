// Row 6: refresh storms against the stand-in Bitrix24 (single-use refresh tokens; a refresh kills
// the previous access token): this library's pool beside the two ways the SDK is used today, in one
// process and across several, on the file store, PostgreSQL and Redis, with the latency of each call
// against one refresh round trip at the stand-in.
//
//   pool          PortalClientPool
//   shared        one B24OAuth per portal (per process), its refresh callback writes back
//   per-request   a new B24OAuth per request from the stored pair, refresh callback writes back
//                 (the b24jssdk install recipe's clientForMember, on the same store)

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { B24OAuth } from '@bitrix24/b24jssdk';
import { silentLogger } from '../src/logger.js';
import { OAuthClient } from '../src/oauth/oauth-client.js';
import { PortalClientPool } from '../src/pool/pool.js';
import { standInTrust } from '../src/testing/fake-bitrix24.js';
import { oauthBaseFromServerEndpoint } from '../src/protocol/oauth-hosts.js';
import type { TokenStore } from '../src/store/token-store.js';
import { seedStore, type FakeBitrix24 } from '../src/testing/fake-bitrix24.js';
import { median, percentile } from './lib.js';
import { createStore, type StoreKind, type StoreLocation } from './stores.js';
import type { StormTrace, TraceEvent } from './storm-trace.js';

/**
 * The SDK's rate limiter (a burst of 50, then 2 requests/s per client) is opened wide for every
 * strategy, and the pool's request budget is off: the stand-in does not limit, and a storm measures
 * the refresh, not a limiter's queue.
 */
export const OPEN_LIMITS = { rateLimit: { burstLimit: 1_000_000, drainRate: 1_000_000, adaptiveEnabled: false } };

export type Strategy = 'pool' | 'shared' | 'per-request';
export const STRATEGIES: readonly Strategy[] = ['pool', 'shared', 'per-request'];
const workerPath = fileURLToPath(new URL('./storm-worker.ts', import.meta.url));

export interface Credentials {
  clientId: string;
  clientSecret: string;
  /** The stand-in's address: its OAuth host and REST roots are trusted. */
  url: string;
}

/** A function performing one `profile` call for a portal; resolves to its success. */
export type Call = (memberId: string, i: number) => Promise<boolean>;

export interface Caller {
  readonly call: Call;
  readonly close: () => Promise<void>;
  /** The pool's waits for another worker's lock so far (ms each, first try to adoption or lock). */
  readonly lockWaits?: () => number[];
  /** The pool's requests re-sent after a 401 so far (each re-send answers one refused request). */
  readonly resends?: () => number;
}

/** Makes the caller of a strategy; `trace` (the pool only) follows its calls, requests and refreshes. */
export async function caller(strategy: Strategy, store: TokenStore, credentials: Credentials, trace?: StormTrace): Promise<Caller> {
  const version = (i: number) => (i % 2 === 0 ? 'v2' : 'v3');
  if (strategy === 'pool') {
    // The pool's request budget (Bitrix24's 2 requests/s per portal, burst 50, at 80%) is off like
    // the SDK's limiter: 50 or 100 calls on one portal would otherwise queue for 30 s and more.
    const pool = new PortalClientPool({ store: trace?.wrap(store) ?? store, clientId: credentials.clientId, clientSecret: credentials.clientSecret, ...standInTrust(credentials.url), logger: silentLogger, restrictionParams: OPEN_LIMITS, requestBudget: false });
    await pool.ready(); // subscribes to the store's change feed where there is one
    const waits: number[] = [];
    pool.on('lock-wait', (event) => waits.push(event.waitedMs));
    trace?.watch(pool);
    const call: Call = async (memberId, i) => (await (await pool.clientFor(memberId)).actions[version(i)].call.make({ method: 'profile' })).isSuccess;
    return {
      call:
        trace === undefined
          ? call
          : async (memberId, i) => {
              trace.mark('call-start');
              try {
                return await call(memberId, i);
              } finally {
                trace.mark('call-end');
              }
            },
      close: () => pool.close(),
      lockWaits: () => waits.splice(0),
      resends: () => pool.stats().resentRequests,
    };
  }
  const build = async (memberId: string): Promise<B24OAuth> => {
    const r = await store.get(memberId);
    if (r === undefined) throw new Error('not installed');
    const client = new B24OAuth(
      {
        applicationToken: r.applicationToken ?? '',
        userId: r.userId ?? 0,
        memberId,
        accessToken: r.accessToken,
        refreshToken: r.refreshToken,
        expires: r.expires,
        expiresIn: 3600,
        scope: r.scope,
        domain: r.domain,
        clientEndpoint: r.clientEndpoint,
        serverEndpoint: r.serverEndpoint,
        status: 'L',
      },
      credentials,
      { restrictionParams: OPEN_LIMITS },
    );
    // The write-back everyone writes: save whatever the SDK refreshed to.
    client.setCallbackRefreshAuth(async ({ b24OAuthParams: p }) => {
      const current = await store.get(memberId);
      if (current === undefined) return;
      await store.upsert({ ...current, accessToken: p.accessToken, refreshToken: p.refreshToken, expires: p.expires, updatedAt: Date.now(), chainUpdatedAt: Date.now() });
    });
    return client;
  };
  if (strategy === 'shared') {
    const clients = new Map<string, Promise<B24OAuth>>();
    return {
      call: async (memberId, i) => {
        let client = clients.get(memberId);
        if (client === undefined) clients.set(memberId, (client = build(memberId)));
        return (await (await client).actions[version(i)].call.make({ method: 'profile' })).isSuccess;
      },
      close: () => Promise.resolve(),
    };
  }
  return {
    call: async (memberId, i) => (await (await build(memberId)).actions[version(i)].call.make({ method: 'profile' })).isSuccess,
    close: () => Promise.resolve(),
  };
}

/**
 * The floor of a storm on a dead token, with live tokens: each call sends its request and, once
 * answered, sends it again (the refused request and its re-send, without the refusal and the
 * refresh). Every call starts at once.
 */
export function twice(calls: readonly (() => Promise<boolean>)[]): (() => Promise<boolean>)[] {
  return calls.map((call) => async () => (await call()) && (await call()));
}

/** Starts every call at once; returns how many failed and each call's latency (ms). */
export async function storm(calls: readonly (() => Promise<boolean>)[]): Promise<{ failed: number; latencies: number[] }> {
  const latencies: number[] = [];
  let failed = 0;
  await Promise.all(
    calls.map(async (call) => {
      const started = performance.now();
      let ok = false;
      try {
        ok = await call();
      } catch {
        ok = false;
      }
      latencies.push(performance.now() - started);
      if (!ok) failed++;
    }),
  );
  return { failed, latencies };
}

export interface StormResult {
  readonly store: StoreKind;
  readonly scenario: string;
  readonly strategy: Strategy;
  readonly portals: number;
  readonly processes: number;
  readonly calls: number;
  readonly refreshRequests: number;
  readonly reuse: number;
  readonly failed: number;
  readonly wallMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** p99 of the same storm with live tokens (no refresh needed), run just before. */
  readonly liveP99Ms: number;
  /**
   * p99 of the same storm with live tokens where each call sends its request twice in a row
   * ({@link twice}), run just before: a storm whose every request is refused once costs at least
   * this. The pool only.
   */
  readonly twoWavesP99Ms?: number;
  /** Requests the pool re-sent after a 401 during the storm, per process (each answers one 401). */
  readonly resends?: readonly number[];
  /** The pool's waits for another worker's lock during the storm, ms each. */
  readonly lockWaits: readonly number[];
  /** Each process's trace of the storm, when traced (bench/storm-profile.ts). */
  readonly traces?: readonly (readonly TraceEvent[])[];
}

/** The median time of one refresh round trip at the stand-in (the physical floor of a storm). */
export async function refreshRoundTripMs(b24: FakeBitrix24, samples: number): Promise<number> {
  const oauth = new OAuthClient({ clientId: b24.clientId, clientSecret: b24.clientSecret });
  const portal = b24.addPortal();
  const base = oauthBaseFromServerEndpoint(b24.serverEndpoint);
  let refreshToken = b24.issueChain(portal.memberId).refreshToken;
  const times: number[] = [];
  for (let i = 0; i < samples + 5; i++) {
    const started = performance.now();
    const answer = await oauth.refresh(base, refreshToken);
    if (i >= 5) times.push(performance.now() - started);
    refreshToken = answer.refreshToken ?? refreshToken;
  }
  return median(times);
}

/** One storm in this process: `portals` portals, `callsEach` concurrent calls on each. */
export async function inProcess(b24: FakeBitrix24, kind: StoreKind, strategy: Strategy, portals: number, callsEach: number, scenario: string, trace?: StormTrace): Promise<StormResult> {
  const bench = await createStore(kind);
  try {
    const members: string[] = [];
    for (let i = 0; i < portals; i++) {
      const portal = b24.addPortal();
      await seedStore(bench.store, b24, portal.memberId);
      members.push(portal.memberId);
    }
    const { call, close, lockWaits, resends } = await caller(strategy, bench.store, b24, trace);
    try {
      // Warm the clients (as a running service would have), then expire every token server-side.
      await Promise.all(members.map((m) => call(m, 0).catch(() => false)));
      // The same storm with live tokens: what the calls cost on this machine without any refresh.
      const live = await storm(members.flatMap((m) => Array.from({ length: callsEach }, (_, i) => () => call(m, i))));
      const floor = strategy === 'pool' ? await storm(twice(members.flatMap((m) => Array.from({ length: callsEach }, (_, i) => () => call(m, i))))) : undefined;
      for (const m of members) b24.expireAccessTokens(m);
      b24.resetStats();
      trace?.take();
      const resentBefore = resends?.() ?? 0;
      const started = performance.now();
      const { failed, latencies } = await storm(members.flatMap((m) => Array.from({ length: callsEach }, (_, i) => () => call(m, i))));
      const wallMs = performance.now() - started;
      return {
        ...(trace === undefined ? {} : { traces: [trace.take()] }),
        ...(floor === undefined ? {} : { twoWavesP99Ms: percentile(floor.latencies, 99) }),
        ...(resends === undefined ? {} : { resends: [resends() - resentBefore] }),
        lockWaits: lockWaits?.() ?? [],
        store: kind,
        scenario,
        strategy,
        portals,
        processes: 1,
        calls: portals * callsEach,
        refreshRequests: b24.stats.refreshRequests,
        reuse: b24.stats.refreshReuse,
        failed,
        wallMs,
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        liveP99Ms: percentile(live.latencies, 99),
      };
    } finally {
      await close();
    }
  } finally {
    await bench.dispose();
  }
}

/** One storm across `workers` processes sharing one store and one portal. */
export async function multiProcess(b24: FakeBitrix24, kind: StoreKind, strategy: Strategy, workers: number, callsEach: number, scenario: string): Promise<StormResult> {
  const bench = await createStore(kind);
  const children: { child: ReturnType<typeof spawn>; next: () => Promise<string> }[] = [];
  try {
    const portal = b24.addPortal();
    await seedStore(bench.store, b24, portal.memberId);
    const location: StoreLocation = bench.location;
    for (let w = 0; w < workers; w++) {
      const child = spawn(process.execPath, ['--import', 'tsx', workerPath, strategy, JSON.stringify(location), portal.memberId, String(callsEach)], {
        env: { ...process.env, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret, B24_URL: b24.url },
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      children.push({ child, next: async () => String((await lines.next()).value) });
    }
    for (const c of children) await c.next(); // "ready"
    for (const c of children) c.child.stdin!.write('live\n');
    const live = await Promise.all(children.map(async (c) => JSON.parse(await c.next()) as { failed: number; latencies: number[] }));
    let floor: { latencies: number[] }[] | undefined;
    if (strategy === 'pool') {
      for (const c of children) c.child.stdin!.write('twice\n');
      floor = await Promise.all(children.map(async (c) => JSON.parse(await c.next()) as { latencies: number[] }));
    }
    type Report = { failed: number; latencies: number[]; lockWaits?: number[]; trace?: TraceEvent[]; resends?: number };
    b24.expireAccessTokens(portal.memberId);
    b24.resetStats();
    const started = performance.now();
    for (const c of children) c.child.stdin!.write('go\n');
    const reports = await Promise.all(children.map(async (c) => JSON.parse(await c.next()) as Report));
    const wallMs = performance.now() - started;
    const latencies = reports.flatMap((r) => r.latencies);
    return {
      ...(reports.every((r) => r.trace !== undefined) ? { traces: reports.map((r) => r.trace!) } : {}),
      ...(floor === undefined ? {} : { twoWavesP99Ms: percentile(floor.flatMap((r) => r.latencies), 99) }),
      ...(reports.every((r) => r.resends !== undefined) ? { resends: reports.map((r) => r.resends!) } : {}),
      lockWaits: reports.flatMap((r) => r.lockWaits ?? []),
      store: kind,
      scenario,
      strategy,
      portals: 1,
      processes: workers,
      calls: workers * callsEach,
      refreshRequests: b24.stats.refreshRequests,
      reuse: b24.stats.refreshReuse,
      failed: reports.reduce((a, r) => a + r.failed, 0),
      wallMs,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      liveP99Ms: percentile(live.flatMap((r) => r.latencies), 99),
    };
  } finally {
    for (const c of children) c.child.kill();
    await bench.dispose();
  }
}
