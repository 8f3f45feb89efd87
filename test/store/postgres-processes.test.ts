// PostgresTokenStore across real processes: four starting at once on an empty database, a lock holder
// killed with SIGKILL, a holder paused past its lease (the conditional write fences it), and the
// change feed carrying another process's writes.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import type { PortalRecord, StoreChange } from '../../src/store/token-store.js';
import { defaultExecArgv, moduleUrl, StoreChild } from '../../src/testing/conformance/child.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { serviceAvailable } from '../support/services.js';
import { adminQuery, dropTables, enterGate, PG_URL, uniquePrefix } from './fixtures/pg-support.js';
import { childModule, nodeArgs } from '../support/children.js';

const available = await serviceAvailable('postgres');
const openerChild = childModule(new URL('./fixtures/open-postgres-store.ts', import.meta.url)); // its bundle when there is one
const opener = moduleUrl(openerChild.module);
const starter = fileURLToPath(new URL('./fixtures/pg-start-worker.ts', import.meta.url));
const MEMBER = 'a223c6b3710f85df22e9377d6c4f7553';

describe.skipIf(!available)('PostgresTokenStore across processes', () => {
  let leave: () => Promise<void> = () => Promise.resolve();
  let prefix: string;
  let store: PostgresTokenStore;
  const children: StoreChild[] = [];

  beforeAll(async () => {
    leave = await enterGate('shared');
  }, 200_000);
  afterAll(async () => {
    await leave();
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((child) => child.kill()));
    await store?.close();
    if (prefix !== undefined) await dropTables(prefix);
  });

  const open = (): PostgresTokenStore => {
    prefix = uniquePrefix('proc');
    store = new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: prefix });
    return store;
  };
  const child = async (): Promise<StoreChild> => {
    const started = await StoreChild.start({ module: opener, args: { connectionString: PG_URL, tablePrefix: prefix } }, openerChild.execArgv ?? defaultExecArgv(opener));
    children.push(started);
    return started;
  };

  it('four processes starting at once on an empty database all migrate and write', async () => {
    open();
    const workers = Array.from({ length: 4 }, (_, i) => {
      const proc = spawn(process.execPath, [...nodeArgs(starter), PG_URL, prefix, `worker-${i}`], { stdio: 'pipe' });
      const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
      let stderr = '';
      proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const next = async (): Promise<string> => {
        const { value, done } = await lines.next();
        if (done) throw new Error(`worker ended early: ${stderr}`);
        return value;
      };
      return { proc, next };
    });
    for (const worker of workers) expect(await worker.next()).toBe('ready');
    const startAt = String(Date.now() + 500);
    for (const worker of workers) worker.proc.stdin.write(startAt);
    const outcomes = await Promise.all(workers.map(async (worker) => JSON.parse(await worker.next()) as unknown));
    expect(outcomes).toStrictEqual(Array.from({ length: 4 }, () => ({ ok: true, version: 1 })));
    expect(await adminQuery(`SELECT key, value FROM "${prefix}_meta"`)).toStrictEqual([{ key: 'schema_version', value: '3' }]);
    const names = (await store.list()).records.map((record) => record.memberId);
    expect(names).toStrictEqual(['worker-0', 'worker-1', 'worker-2', 'worker-3']);
  }, 60_000);

  it('a holder killed with SIGKILL frees the lock when its lease lapses, and the next holder writes', async () => {
    await open().upsert(sampleRecord(MEMBER));
    const holder = await child();
    const theirs = await holder.call<{ token: string; expiresAt: number } | null>('tryLock', { memberId: MEMBER, ttlMs: 3_000 });
    if (theirs === null) throw new Error('the child could not take the lock');
    await holder.kill();
    const blocked = await store.tryLock(MEMBER, 10_000);
    // Blocked while the dead holder's lease lives (asserted when the answer came back before it lapsed).
    if (Date.now() < theirs.expiresAt) expect(blocked).toBeUndefined();
    if (blocked === undefined) await sleep(Math.max(0, theirs.expiresAt - Date.now()) + 50);
    const ours = blocked ?? (await store.tryLock(MEMBER, 10_000));
    expect(ours).toBeDefined();
    expect(ours?.token).not.toBe(theirs.token);
    const written = await store.update(MEMBER, 1, { accessToken: 'after-the-crash' });
    expect(written.ok && written.record.version).toBe(2);
    await ours?.release();
  }, 30_000);

  it('a holder paused past its lease cannot overwrite the next holder: the conditional write fences it', async () => {
    await open().upsert(sampleRecord(MEMBER));
    const paused = await child();
    const read = await paused.call<PortalRecord>('get', { memberId: MEMBER });
    expect(read.version).toBe(1);
    const theirs = await paused.call<{ token: string; expiresAt: number } | null>('tryLock', { memberId: MEMBER, ttlMs: 500 });
    if (theirs === null || paused.pid === undefined) throw new Error('the child could not take the lock');
    process.kill(paused.pid, 'SIGSTOP');
    try {
      await sleep(Math.max(0, theirs.expiresAt - Date.now()) + 50);
      const ours = await store.tryLock(MEMBER, 10_000);
      expect(ours).toBeDefined();
      const mine = await store.update(MEMBER, 1, { accessToken: 'new-holder' });
      expect(mine.ok).toBe(true);
    } finally {
      process.kill(paused.pid, 'SIGCONT');
    }
    // The paused holder wakes up and writes what it computed from its old read: refused.
    type Attempt = { ok: boolean; current: PortalRecord | null };
    const [late] = await paused.call<Attempt[]>('race', { memberId: MEMBER, expectedVersion: read.version, attempts: 1, startAt: Date.now(), tag: 'stale' });
    expect(late?.ok).toBe(false);
    expect(late?.current?.accessToken).toBe('new-holder');
    // Its release is a no-op: the lock stays with the new holder.
    await paused.call('release', { token: theirs.token });
    expect(await store.tryLock(MEMBER, 10_000)).toBeUndefined();
    expect(await store.get(MEMBER)).toMatchObject({ version: 2, accessToken: 'new-holder' });
  }, 30_000);

  it('the change feed delivers writes made by another process', async () => {
    await open().upsert(sampleRecord(MEMBER));
    const changes: StoreChange[] = [];
    const subscription = await store.subscribe({ onChange: (change) => changes.push(change) });
    try {
      const writer = await child();
      await writer.call('race', { memberId: MEMBER, expectedVersion: 1, attempts: 1, startAt: Date.now(), tag: 'other' });
      for (let i = 0; i < 250 && changes.length === 0; i++) await sleep(20);
      expect(changes).toStrictEqual([{ memberId: MEMBER, chain: 'portal', version: 2, deleted: false }]);
    } finally {
      await subscription.close();
    }
  }, 30_000);

  it('renew extends a live lease and fails once it lapsed and was taken over', async () => {
    open();
    const first = await store.tryLock(MEMBER, 300);
    if (first?.renew === undefined) throw new Error('tryLock gave no renewable lease');
    expect(await first.renew(10_000)).toBe(true);
    await sleep(400);
    expect(await store.tryLock(MEMBER, 10_000)).toBeUndefined();
    await first.release();
    const second = await store.tryLock(MEMBER, 200);
    await sleep(300);
    const third = await store.tryLock(MEMBER, 10_000);
    expect(third).toBeDefined();
    expect(await second?.renew?.(10_000)).toBe(false);
    await third?.release();
  });
});
