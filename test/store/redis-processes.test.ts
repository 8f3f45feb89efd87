// RedisTokenStore across real processes: many starting at once on an empty prefix, a lock holder
// killed with SIGKILL, a holder paused past its lease (the conditional write is the fence), and
// changes written in one process delivered to a subscriber in another.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import type { PortalRecord, StoreChange } from '../../src/store/token-store.js';
import { defaultExecArgv, moduleUrl, StoreChild } from '../../src/testing/conformance/child.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { childModule } from '../support/children.js';
import { serviceAvailable } from '../support/services.js';
import { dropPrefix, inspector, keysUnder, REDIS_URL, uniquePrefix } from './fixtures/redis-support.js';

const available = await serviceAvailable('redis');
const admin = inspector();
const opener = childModule(new URL('./fixtures/open-redis-store.ts', import.meta.url)); // its bundle when there is one
const module = moduleUrl(opener.module);
const SECRET = 'SECRET-REFRESH-TOKEN-90ab';
const children: StoreChild[] = [];
const stores: RedisTokenStore[] = [];

function startChild(keyPrefix: string, ready = false): Promise<StoreChild> {
  return StoreChild.start({ module, args: { url: REDIS_URL, keyPrefix, ready } }, opener.execArgv ?? defaultExecArgv(module)).then((child) => {
    children.push(child);
    return child;
  });
}

function open(keyPrefix: string): RedisTokenStore {
  const store = new RedisTokenStore({ url: REDIS_URL, keyPrefix });
  stores.push(store);
  return store;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(async () => {
  await Promise.all(children.splice(0).map((child) => child.stop()));
  for (const store of stores.splice(0)) {
    await store.close();
    await dropPrefix(admin, store.keyPrefix);
  }
});
afterAll(() => {
  admin.disconnect();
});

describe.skipIf(!available)('RedisTokenStore across processes', () => {
  it('4 processes starting at once on an empty prefix all get ready, record the layout once, and share one lock', async () => {
    const keyPrefix = uniquePrefix('start');
    open(keyPrefix);
    const started = await Promise.all(Array.from({ length: 4 }, () => startChild(keyPrefix, true)));
    expect(started).toHaveLength(4);
    expect(await keysUnder(admin, keyPrefix)).toStrictEqual([`${keyPrefix}:layout`]);
    expect(await admin.get(`${keyPrefix}:layout`)).toBe('1');
    const leases = await Promise.all(started.map((child) => child.call('tryLock', { memberId: 'm1', ttlMs: 10_000 })));
    expect(leases.filter((lease) => lease !== null)).toHaveLength(1);
  });

  it('a holder killed with SIGKILL blocks another process only until its lease lapses', async () => {
    const keyPrefix = uniquePrefix('kill');
    open(keyPrefix);
    const [holder, other] = await Promise.all([startChild(keyPrefix), startChild(keyPrefix)]);
    const lease = await holder.call<{ expiresAt: number } | null>('tryLock', { memberId: 'm1', ttlMs: 3_000 });
    expect(lease).not.toBeNull();
    await holder.kill();
    const blocked = await other.call('tryLock', { memberId: 'm1', ttlMs: 10_000 });
    // Blocked while the dead holder's lease lives (a machine slow enough to answer after it lapsed
    // has nothing to say about that).
    if (Date.now() < (lease?.expiresAt ?? 0)) expect(blocked).toBeNull();
    if (blocked !== null) return; // it already took the lapsed lock
    await sleep(Math.max(0, (lease?.expiresAt ?? 0) - Date.now()) + 50);
    expect(await other.call('tryLock', { memberId: 'm1', ttlMs: 10_000 })).not.toBeNull();
  });

  it('a holder paused past its lease cannot overwrite the write of the holder that took over', async () => {
    const keyPrefix = uniquePrefix('pause');
    const store = open(keyPrefix);
    await store.upsert(sampleRecord('m1', { refreshToken: 'r1' }));
    const paused = await startChild(keyPrefix);
    const theirs = await paused.call<{ token: string; expiresAt: number } | null>('tryLock', { memberId: 'm1', ttlMs: 400 });
    expect(theirs).not.toBeNull();
    expect(await paused.call<PortalRecord>('get', { memberId: 'm1' })).toMatchObject({ version: 1 });
    process.kill(paused.pid as number, 'SIGSTOP');
    try {
      await sleep(Math.max(0, (theirs?.expiresAt ?? 0) - Date.now()) + 50);
      const ours = await store.tryLock('m1', 10_000);
      expect(ours).toBeDefined();
      expect(await store.update('m1', 1, { refreshToken: 'r2-ours' })).toMatchObject({ ok: true, record: { version: 2 } });
    } finally {
      process.kill(paused.pid as number, 'SIGCONT');
    }
    // The paused holder wakes up and writes what it computed from version 1: refused.
    const [late] = await paused.call<{ ok: boolean; current: PortalRecord | null }[]>('race', {
      memberId: 'm1',
      expectedVersion: 1,
      attempts: 1,
      startAt: Date.now(),
      tag: 'r2-stale',
    });
    expect(late).toMatchObject({ ok: false, current: { version: 2, refreshToken: 'r2-ours' } });
    // Its release does not free the lock it no longer holds.
    await paused.call('release', { token: theirs?.token });
    expect(await paused.call('tryLock', { memberId: 'm1', ttlMs: 10_000 })).toBeNull();
    expect((await store.get('m1'))?.refreshToken).toBe('r2-ours');
  });

  it('delivers writes made in another process to a subscriber, without any token on the channel', async () => {
    const keyPrefix = uniquePrefix('feed');
    const store = open(keyPrefix);
    await store.upsert(sampleRecord('m1', { accessToken: SECRET, refreshToken: SECRET }));
    const changes: StoreChange[] = [];
    const feed = await store.subscribe({ onChange: (change) => changes.push(change) });
    const raw: string[] = [];
    const spy = admin.duplicate();
    spy.on('message', (_channel: string, message: string) => raw.push(message));
    await spy.subscribe(`${keyPrefix}:changes`);
    try {
      const child = await startChild(keyPrefix);
      await child.call('race', { memberId: 'm1', expectedVersion: 1, attempts: 3, startAt: Date.now(), tag: SECRET });
      await store.upsert({ ...sampleRecord('m1', { accessToken: SECRET }), chain: 'user:5', userId: 5 });
      expect(await store.deletePortal('m1')).toBe(2);
      await store.delete('m1'); // nothing to delete: no change
      await store.upsert(sampleRecord('m9'));
      for (let i = 0; i < 100 && changes.length < 4; i++) await sleep(20);
      expect(changes).toStrictEqual([
        { memberId: 'm1', chain: 'portal', version: 2, deleted: false },
        { memberId: 'm1', chain: 'user:5', version: 1, deleted: false },
        { memberId: 'm1', chain: undefined, version: undefined, deleted: true },
        { memberId: 'm9', chain: 'portal', version: 1, deleted: false },
      ]);
      await store.delete('m9');
      for (let i = 0; i < 100 && changes.length < 5; i++) await sleep(20);
      expect(changes[4]).toStrictEqual({ memberId: 'm9', chain: 'portal', version: 1, deleted: true });
      expect(raw).toHaveLength(5);
      for (const message of raw) expect(message).not.toContain(SECRET);
      await feed.close();
      await store.upsert(sampleRecord('m10'));
      for (let i = 0; i < 100 && raw.length < 6; i++) await sleep(20);
      expect(raw).toHaveLength(6);
      expect(changes).toHaveLength(5);
    } finally {
      spy.disconnect();
    }
  });
});
