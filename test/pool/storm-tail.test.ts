// The storm's tail, counted at the stand-in (issue 23, item 2): calls that leave once this process
// knows the chain's token is being replaced (its own refresh in flight, or another worker's write
// announced by the store's change feed) leave with the new token instead of meeting a 401.
import { spawn } from 'node:child_process';
import * as dc from 'node:diagnostics_channel';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { ChainKey, TokenStore } from '../../src/store/token-store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import type { PoolStats } from '../../src/pool-events.js';
import { serviceAvailable } from '../support/services.js';
import type { StoreSpec } from '../support/store-specs.js';
import { clusterStores, startWorker } from './worker-process.js';
import { nodeArgs } from '../support/children.js';

const available = { postgres: await serviceAvailable('postgres'), redis: await serviceAvailable('redis') };

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});

const stormWorker = fileURLToPath(new URL('./fixtures/storm-worker.ts', import.meta.url));

/** A storm worker (fixtures/storm-worker.ts): its own pool on `spec`, `calls` calls at once on "go". */
function stormProcess(spec: StoreSpec, memberId: string, calls: number) {
  const child = spawn(process.execPath, [...nodeArgs(stormWorker), JSON.stringify(spec), memberId, String(calls)], {
    env: { ...process.env, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret, B24_URL: b24.url },
    stdio: 'pipe',
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`worker ended early: ${stderr}`);
    return value;
  };
  return {
    ready: async () => expect(await next()).toBe('ready'),
    go: async () => {
      child.stdin.write('go\n');
      return JSON.parse(await next()) as { ok: number; failed: number; stats: PoolStats };
    },
    kill: () => child.kill(),
  };
}

const refused = (): number => b24.stats.rest.expiredToken + b24.stats.rest.invalidToken;

/** A promise with its resolve, for holding work until the test lets it go. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Resolves when this process sends its next REST request to the stand-in, or after `turns` turns of
 * the event loop with none: long past the moment 50 calls fired together reach the socket when
 * nothing holds them (they take a few turns through the SDK's and axios' promise chains).
 */
function nextRequestOrTurns(turns: number): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      dc.unsubscribe('http.client.request.start', sent);
      resolve();
    };
    const sent = (message: unknown): void => {
      if ((message as { request: { path?: string } }).request.path?.includes('/rest/') === true) finish();
    };
    dc.subscribe('http.client.request.start', sent);
    const turn = (left: number): void => {
      if (left === 0) finish();
      else if (!done) setImmediate(() => turn(left - 1));
    };
    turn(turns);
  });
}

/** Resolves when this process has received `n` answers of `status` from the stand-in. */
function countResponses(n: number, status: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const answered = (message: unknown): void => {
      if ((message as { response: { statusCode?: number } }).response.statusCode === status && ++seen === n) {
        dc.unsubscribe('http.client.response.finish', answered);
        resolve();
      }
    };
    dc.subscribe('http.client.response.finish', answered);
  });
}

/**
 * Fires `n` profile calls of one portal at once (v2 and v3 alternating); resolves once they are
 * fired, with `done`: how many succeeded.
 */
async function fire(pool: PortalClientPool, memberId: string, n: number): Promise<{ done: Promise<number> }> {
  const client = await pool.clientFor(memberId);
  const calls = Array.from({ length: n }, (_, i) => client.actions[i % 2 === 0 ? 'v2' : 'v3'].call.make({ method: 'profile' }).then((r) => r.isSuccess));
  return { done: Promise.all(calls).then((ok) => ok.filter(Boolean).length) };
}

describe('one process', () => {
  it('50 calls on an expired portal, 49 of them fired while the first one\'s refresh is in flight: 1 refused request, 1 refresh, 50 succeed', async () => {
    const portal = b24.addPortal();
    const store = new MemoryTokenStore();
    await seedStore(store, b24, portal.memberId);
    // The refresh request is held at the OAuth host's door until the test lets it go.
    const refreshSent = deferred();
    const answer = deferred();
    const pool = new PortalClientPool({
      ...b24.trust,
      store,
      clientId: b24.clientId,
      clientSecret: b24.clientSecret,
      logger: silentLogger,
      requestBudget: false,
      fetch: async (input, init) => {
        refreshSent.resolve();
        await answer.promise;
        return fetch(input, init);
      },
    });
    try {
      expect(await (await fire(pool, portal.memberId, 1)).done).toBe(1);
      b24.expireAccessTokens(portal.memberId);
      b24.resetStats();
      const first = await fire(pool, portal.memberId, 1);
      await refreshSent.promise; // the first call met its 401; its refresh is in flight
      expect(refused()).toBe(1);
      const rest = await fire(pool, portal.memberId, 49);
      await nextRequestOrTurns(200);
      answer.resolve();
      expect((await first.done) + (await rest.done)).toBe(50);
      expect(refused(), 'refused requests').toBe(1);
      expect(b24.stats.refreshRequests).toBe(1);
      expect(b24.stats.rest.ok).toBe(50);
    } finally {
      await pool.close();
    }
  });
});

describe('one process, a second pool on the same store refreshing', () => {
  it("401s that come back while the change feed's news is being read are re-sent with the new token: no refresh, no lock, no read of this pool's own", async () => {
    const portal = b24.addPortal();
    const store = new MemoryTokenStore();
    await seedStore(store, b24, portal.memberId);
    // This pool's store: its reads held on demand, its reads and lock tries counted.
    let hold: { started: () => void; release: Promise<void> } | undefined;
    const counts = { get: 0, tryLock: 0 };
    const held: TokenStore = new Proxy(store, {
      get(target, name, receiver) {
        if (name === 'get') {
          return async (key: ChainKey) => {
            counts.get++;
            const h = hold;
            hold = undefined;
            if (h !== undefined) {
              h.started();
              await h.release;
            }
            return target.get(key);
          };
        }
        if (name === 'tryLock') counts.tryLock++;
        const value: unknown = Reflect.get(target, name, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const options = { ...b24.trust, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, requestBudget: false } as const;
    const here = new PortalClientPool({ ...options, store: held });
    const other = new PortalClientPool({ ...options, store });
    try {
      await here.ready();
      expect(await (await fire(here, portal.memberId, 1)).done).toBe(1);
      b24.expireAccessTokens(portal.memberId);
      b24.resetStats();
      // The portal judges each token on arrival and answers late: these calls leave with the dead
      // token and their 401s come back after the other pool's write below.
      b24.setRestDelay(1_500);
      const arrived = countResponses(10, 401);
      const calls = await fire(here, portal.memberId, 10);
      const readStarted = deferred();
      const release = deferred();
      hold = { started: readStarted.resolve, release: release.promise };
      Object.assign(counts, { get: 0, tryLock: 0 });
      // The other worker finds the stored token refused (the lifecycle handler's check): one
      // coordinated refresh, one conditional write, announced on the feed.
      expect(await other.confirmChain(portal.memberId)).toBe('alive');
      await readStarted.promise;
      await arrived; // the 10 refusals are back
      b24.setRestDelay(0);
      await nextRequestOrTurns(200);
      release.resolve();
      expect(await calls.done).toBe(10);
      expect(b24.stats.rest.expiredToken + b24.stats.rest.invalidToken).toBe(10);
      expect(b24.stats.refreshRequests).toBe(1);
      expect(here.stats()).toMatchObject({ refreshes: 0, resentRequests: 10 });
      expect(counts, "this pool's store calls: the feed's one read").toEqual({ get: 1, tryLock: 0 });
    } finally {
      b24.setRestDelay(0);
      await here.close();
      await other.close();
    }
  });
});

describe('one process, the read of the announced record stalls', () => {
  it('the hold is bounded: calls leave after it, meet their 401 and are re-sent after one refresh-free adoption', async () => {
    const portal = b24.addPortal();
    const store = new MemoryTokenStore();
    await seedStore(store, b24, portal.memberId);
    let stall: (() => void) | undefined;
    const never = new Promise<void>(() => undefined);
    const held: TokenStore = new Proxy(store, {
      get(target, name, receiver) {
        if (name === 'get') {
          return async (key: ChainKey) => {
            const s = stall;
            stall = undefined;
            if (s !== undefined) {
              s();
              await never; // this read never lands
            }
            return target.get(key);
          };
        }
        const value: unknown = Reflect.get(target, name, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const options = { ...b24.trust, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, requestBudget: false } as const;
    const here = new PortalClientPool({ ...options, store: held });
    const other = new PortalClientPool({ ...options, store });
    try {
      await here.ready();
      expect(await (await fire(here, portal.memberId, 1)).done).toBe(1);
      b24.expireAccessTokens(portal.memberId);
      const stalled = deferred();
      stall = stalled.resolve;
      expect(await other.confirmChain(portal.memberId)).toBe('alive');
      await stalled.promise;
      b24.resetStats();
      expect(await (await fire(here, portal.memberId, 5)).done).toBe(5);
      expect(b24.stats.refreshRequests).toBe(0);
      expect(here.stats()).toMatchObject({ refreshes: 0, resentRequests: 5 });
    } finally {
      await here.close();
      await other.close();
    }
  });
});

for (const shared of clusterStores('stormtail', available)) {
  describe.skipIf(!shared.available)(`across processes on ${shared.name}`, () => {
    it("another process refreshes: 50 calls fired here while the change feed's news is being read leave with the new token (0 refused, 0 refreshes here)", async () => {
      const leave = await shared.gate();
      const prefix = `${shared.prefix}_feed`;
      const store = shared.open(prefix);
      // This process's store, its reads of the portal's chain held on demand: the feed's news of the
      // other worker's write arrives, and the read of the new record waits until the test lets it go.
      let hold: { started: () => void; release: Promise<void> } | undefined;
      const held: TokenStore = new Proxy(store, {
        get(target, name, receiver) {
          if (name === 'get') {
            return async (key: ChainKey) => {
              const h = hold;
              hold = undefined;
              if (h !== undefined) {
                h.started();
                await h.release;
              }
              return target.get(key);
            };
          }
          const value: unknown = Reflect.get(target, name, receiver);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
      const portal = b24.addPortal();
      await seedStore(store, b24, portal.memberId);
      const pool = new PortalClientPool({ ...b24.trust, store: held, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, requestBudget: false });
      const other = startWorker(b24, shared.kind, shared.url, prefix, portal.memberId);
      try {
        await pool.ready();
        expect(await (await fire(pool, portal.memberId, 1)).done).toBe(1);
        expect(await other.ask('calls 1')).toMatchObject({ ok: 1 });

        b24.expireAccessTokens(portal.memberId);
        const readStarted = deferred();
        const release = deferred();
        hold = { started: readStarted.resolve, release: release.promise };
        // The other process meets the dead token, refreshes and stores the new pair; the feed tells
        // this process, which starts reading the new record.
        expect(await other.ask('calls 1')).toMatchObject({ ok: 1 });
        await readStarted.promise;
        const before = refused();
        const refreshesBefore = b24.stats.refreshRequests;
        const calls = await fire(pool, portal.memberId, 50);
        await nextRequestOrTurns(200);
        release.resolve();
        expect(await calls.done).toBe(50);
        expect(refused() - before, 'requests refused in this process').toBe(0);
        expect(b24.stats.refreshRequests - refreshesBefore).toBe(0);
        expect(pool.stats()).toMatchObject({ refreshes: 0, resentRequests: 0 });
      } finally {
        await other.stop();
        await pool.close();
        await store.close?.();
        await shared.cleanup(prefix);
        await leave();
      }
    }, 60_000);
  });
}

for (const shared of clusterStores('stormcount', available)) {
  describe.skipIf(!shared.available)(`4 processes on ${shared.name}`, () => {
    it('3 processes x 25 calls at once on an expired portal: each process meets at most one 401 per call, every 401 re-sent once; a 4th process firing afterwards meets none', async () => {
      const leave = await shared.gate();
      const prefix = `${shared.prefix}_count`;
      const spec: StoreSpec = { kind: shared.kind, url: shared.url, prefix };
      const store = shared.open(prefix);
      const workers: ReturnType<typeof stormProcess>[] = [];
      try {
        const portal = b24.addPortal();
        await seedStore(store, b24, portal.memberId);
        for (let i = 0; i < 4; i++) workers.push(stormProcess(spec, portal.memberId, 25));
        for (const w of workers) await w.ready();
        b24.expireAccessTokens(portal.memberId);
        b24.resetStats();
        const storm = await Promise.all(workers.slice(0, 3).map((w) => w.go()));
        const refusedInStorm = refused();
        expect(storm.map((o) => o.ok)).toEqual([25, 25, 25]);
        // A storm's requests all leave before any 401 can come back (bench/storm-profile.ts), so a
        // process meets at most one 401 per call; none meets two, and each is answered by one re-send.
        for (const o of storm) expect(o.stats.resentRequests).toBeLessThanOrEqual(25);
        expect(storm.reduce((sum, o) => sum + o.stats.resentRequests, 0)).toBe(refusedInStorm);
        expect(b24.stats.refreshRequests).toBe(1);
        expect(b24.stats.refreshReuse).toBe(0);
        // The 4th process heard of the new pair on the change feed before its calls left.
        const late = await workers[3]!.go();
        expect(late.ok).toBe(25);
        expect(refused() - refusedInStorm, 'requests refused in the 4th process').toBe(0);
        expect(late.stats).toMatchObject({ refreshes: 0, resentRequests: 0 });
      } finally {
        for (const w of workers) w.kill();
        await store.close?.();
        await shared.cleanup(prefix);
        await leave();
      }
    }, 120_000);
  });
}
