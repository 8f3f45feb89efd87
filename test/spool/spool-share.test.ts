// Issue 22 case 3: during a store outage one portal posting its own fresh chains (genuine updates,
// each proven at the OAuth host) cannot take the shared install spool from other portals' genuine
// installs: a portal's newer entry for a chain replaces its older one, each portal holds at most its
// share, entries that cannot be replayed (corrupt, undecryptable) are quarantined and stop counting,
// and no answer tells the sender that the store is down. The outage is a store wrapper that throws.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { createLifecycleHandler, type LifecycleHandler } from '../../src/http/handler.js';
import { toNodeHandler } from '../../src/http/node.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { FileInstallSpool } from '../../src/spool/file-spool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { listen, post, recordingLogger } from '../http/helpers.js';
import { KEY1 } from '../store/fixtures/encryption.js';

/** A memory store that, while `down`, fails every read and write as an unreachable store does. */
function outageStore(inner: MemoryTokenStore): { store: TokenStore; setDown: (down: boolean) => void } {
  let down = false;
  const store = new Proxy(inner, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || property === 'capabilities') return value;
      return (...args: unknown[]) => {
        if (down && ['get', 'upsert', 'update', 'delete', 'deletePortal', 'tryLock', 'list', 'listChains'].includes(String(property))) {
          return Promise.reject(new StoreError('connection refused', { transient: true }));
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, setDown: (value) => (down = value) };
}

let dir: string;
let b24: FakeBitrix24;
let pool: PortalClientPool | undefined;
let handler: LifecycleHandler | undefined;
let close: (() => Promise<void>) | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'b24pt-spool-share-'));
  b24 = await FakeBitrix24.start();
});
afterEach(async () => {
  handler?.close();
  await close?.();
  await pool?.close();
  await b24.close();
  await rm(dir, { recursive: true, force: true });
});

const MAX_ENTRIES = 20;

describe('one portal cannot take the spool from the others during an outage', () => {
  it('40 fresh updates of one portal, then 3 genuine installs of others: all 3 spooled, the flooder holds 1 entry, no answer names the outage', async () => {
    const memory = new MemoryTokenStore();
    const { store, setDown } = outageStore(memory);
    const logger = recordingLogger();
    pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger });
    const spool = new FileInstallSpool({ directory: join(dir, 'spool'), maxEntries: MAX_ENTRIES, logger });
    handler = createLifecycleHandler({ pool, trustedOAuthHosts: [b24.oauthUrl], spool, spoolReplayMs: 3_600_000, logger });
    const server = await listen(createServer(toNodeHandler(handler)));
    close = server.close;
    const url = `${server.url}/events`;

    const flooder = b24.addPortal();
    expect((await post(url, b24.installEvent(flooder.memberId).form)).status).toBe(200);
    const others = [b24.addPortal(), b24.addPortal(), b24.addPortal()];

    setDown(true);
    const floodAnswers = [];
    for (let i = 0; i < 2 * MAX_ENTRIES; i++) floodAnswers.push(await post(url, b24.updateEvent(flooder.memberId).form));
    const installAnswers = [];
    for (const portal of others) installAnswers.push(await post(url, b24.installEvent(portal.memberId).form));

    const count = (answers: { status: number }[], status: number): number => answers.filter((a) => a.status === status).length;
     
    console.info(`flood: ${count(floodAnswers, 200)} x 200, ${count(floodAnswers, 503)} x 503; installs: ${installAnswers.map((a) => a.status).join(',')}; spool size ${await spool.size()}`);
    expect(count(installAnswers, 200)).toBe(3);
    expect(await spool.size()).toBe(1 + 3); // the flooder's newest chain, and one install per other portal
    for (const answer of [...floodAnswers, ...installAnswers]) {
      expect(answer.text).not.toMatch(/spool|store|STORE_FAILURE|SPOOL_FULL/i);
    }

    setDown(false);
    // The three installs and the flooder's newest chain apply (a pair of the same second as the
    // stored one is told apart by when it was taken: chains/replay.ts).
    expect(await handler.replaySpool()).toMatchObject({ applied: 4, stale: 0 });
    for (const portal of others) expect((await memory.get(portal.memberId))?.state).toBe('active');
  });
});

describe('FileInstallSpool capacity', () => {
  const entry = (memberId: string, ts: number, replace: 'always' | 'if-absent' = 'always') => ({
    memberId,
    ts,
    kind: 'update' as const,
    replace,
    record: sampleRecord(memberId, { eventTs: ts }),
  });

  it("a newer entry for a portal's chain replaces the older one; an older one is not kept", async () => {
    const spool = new FileInstallSpool({ directory: join(dir, 's'), logger: recordingLogger() });
    const first = await spool.put(entry('m1', 100));
    await spool.put(entry('m1', 101));
    await spool.put(entry('m1', 99)); // older than what is kept: nothing to keep
    await spool.put(entry('m1', 102, 'if-absent')); // a non-administrator's chain does not displace an administrator's
    expect(await spool.size()).toBe(2);
    const seen: [string, number, string | undefined][] = [];
    await spool.drain((e) => {
      seen.push([e.memberId, e.ts, e.replace]);
      return Promise.resolve('applied');
    });
    expect(seen).toEqual([
      ['m1', 101, 'always'],
      ['m1', 102, 'if-absent'],
    ]);
    expect(first).toMatch(/^\d{15}-/);
  });

  it("an administrator's entry is not displaced by a later entry of someone else for the same chain (model F3)", async () => {
    const spool = new FileInstallSpool({ directory: join(dir, 's'), logger: recordingLogger() });
    await spool.put({ ...entry('m1', 100), admin: true });
    await spool.put({ ...entry('m1', 200), admin: false }); // a forged install by an ordinary user, stored with its answer lost
    await spool.put({ ...entry('m1', 101), admin: true }); // a newer administrator's entry still replaces the older one
    expect(await spool.size()).toBe(2);
    const seen: [number, boolean | undefined][] = [];
    await spool.drain((e) => {
      seen.push([e.ts, e.admin]);
      return Promise.resolve('applied');
    });
    expect(seen).toEqual([
      [200, false],
      [101, true],
    ]);
  });

  it('holds at most maxEntriesPerPortal entries of one portal (SpoolFullError limit portal), others still fit', async () => {
    const spool = new FileInstallSpool({ directory: join(dir, 's'), maxEntries: 10, maxEntriesPerPortal: 2, logger: recordingLogger() });
    const chainEntry = (memberId: string, userId: number) => ({ ...entry(memberId, 100), record: sampleRecord(memberId, { chain: `user:${userId}` as const }) });
    await spool.put(chainEntry('m1', 1));
    await spool.put(chainEntry('m1', 2));
    await expect(spool.put(chainEntry('m1', 3))).rejects.toMatchObject({ code: 'SPOOL_FULL', limit: 'portal', memberId: 'm1' });
    await spool.put(chainEntry('m2', 1));
    expect(await spool.size()).toBe(3);
  });

  it('corrupt and undecryptable entries are quarantined with a warning and stop counting against maxEntries', async () => {
    const logger = recordingLogger();
    const directory = join(dir, 's');
    // An entry sealed with a key this spool does not have: it cannot be decrypted here.
    await new FileInstallSpool({ directory, logger, encryption: { keys: { k1: KEY1 }, writeKeyId: 'k1' } }).put(entry('m8', 100));
    const spool = new FileInstallSpool({ directory, maxEntries: 4, logger });
    await spool.put(entry('m0', 100));
    for (let i = 1; i <= 2; i++) await writeFile(join(directory, `00000000000000${i}-000000-0000000${i}.json`), 'not json');
    await expect(spool.put(entry('m9', 100))).rejects.toMatchObject({ code: 'SPOOL_FULL', limit: 'entries' });

    expect(await spool.drain(() => Promise.resolve('retry'))).toStrictEqual({ applied: 0, stale: 0, retried: 1, failed: 3 });
    expect(await spool.size()).toBe(1);
    for (const memberId of ['m1', 'm2', 'm3']) await spool.put(entry(memberId, 100));
    expect(await spool.size()).toBe(4);
    expect((await readdir(join(directory, 'quarantine'))).length).toBe(3);
    expect(logger.lines.filter((line) => line.includes('"level":"warn"') && line.includes('quarantine'))).toHaveLength(3);
  });
});
