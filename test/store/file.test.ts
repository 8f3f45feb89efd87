// FileTokenStore: the conformance suite (cross-process cases in real child processes), plus the
// file-specific promises: permissions, one directory per chain holding its newest version, corrupt
// files, path safety, stale locks.
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { FileTokenStore } from '../../src/store/file/store.js';
import { describeTokenStore } from '../../src/testing/conformance.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { hex, newestFile } from './fixtures/file-layout.js';
import { childModule } from '../support/children.js';

const SECRET = 'SECRET-ACCESS-TOKEN-7f3a';

async function freshStore(): Promise<FileTokenStore> {
  const base = await mkdtemp(join(tmpdir(), 'b24pt-file-'));
  return new FileTokenStore({ directory: join(base, 'portals') });
}

async function removeStore(store: FileTokenStore): Promise<void> {
  await rm(join(store.directory, '..'), { recursive: true, force: true });
}

await describeTokenStore('FileTokenStore', {
  create: freshStore,
  destroy: removeStore,
  crossProcess: {
    ...childModule(new URL('./fixtures/open-file-store.ts', import.meta.url)),
    args: (store) => ({ directory: store.directory }),
  },
  extraTests: (getStore) => {
    it('creates its directory and chain directories 0700 and version files 0600', async () => {
      if (process.platform === 'win32') return;
      const store = getStore();
      await store.upsert(sampleRecord('member'));
      expect((await stat(store.directory)).mode & 0o777).toBe(0o700);
      expect((await stat(join(store.directory, hex('member')))).mode & 0o777).toBe(0o700);
      expect((await stat(await newestFile(store.directory, hex('member')))).mode & 0o777).toBe(0o600);
      await store.update('member', 1, { accessToken: 'next' });
      expect((await stat(await newestFile(store.directory, hex('member')))).mode & 0o777).toBe(0o600);
    });

    it('turns a deleted portal into a tombstone that holds its version and no token', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('member', { accessToken: SECRET, refreshToken: `${SECRET}-r` }));
      await store.update('member', 1, { scope: 'crm' });
      expect(await store.delete('member')).toBe(true);
      expect(await readdir(join(store.directory, hex('member'))), 'the tombstone is the only version left').toStrictEqual(['3.json']);
      const text = await readFile(join(store.directory, hex('member'), '3.json'), 'utf8');
      expect(text).not.toContain(SECRET);
      expect(JSON.parse(text)).toStrictEqual({ format: 2, deleted: { memberId: 'member', version: 2 } });
      expect((await store.list()).records).toStrictEqual([]);
      expect((await store.upsert(sampleRecord('member'))).version).toBe(3);
    });

    it('keeps one directory per portal holding only its newest version, and no temp or lock files, after writes', async () => {
      const store = getStore();
      for (const id of ['p1', 'p2', 'p3']) await store.upsert(sampleRecord(id));
      await Promise.all(Array.from({ length: 10 }, (_, i) => store.update('p1', 1, { accessToken: `t${i}` })));
      for (let version = 1; version <= 5; version++) await store.update('p2', version, { expires: version });
      const lease = await store.tryLock('p3', 10_000);
      await lease?.release();
      expect((await readdir(store.directory)).sort()).toStrictEqual([hex('p1'), hex('p2'), hex('p3')].sort());
      expect(await readdir(join(store.directory, hex('p1'))), 'one of the 10 writes won').toStrictEqual(['2.json']);
      expect(await readdir(join(store.directory, hex('p2'))), 'older versions are pruned').toStrictEqual(['6.json']);
      expect(await readdir(join(store.directory, hex('p3')))).toStrictEqual(['1.json']);
    });

    it('names files by the hex of the memberId, so no memberId escapes the directory', async () => {
      const store = getStore();
      const parent = join(store.directory, '..');
      const hostile = ['../escape', '../../etc/passwd', '/absolute', 'a/b\\c', '..', '.', 'nul\u0000byte', 'ПОРТАЛ'];
      for (const id of hostile) await store.upsert(sampleRecord(id));
      for (const id of hostile) expect((await store.get(id))?.memberId).toBe(id);
      expect(await readdir(parent)).toStrictEqual(['portals']);
      const names = await readdir(store.directory);
      expect(names).toHaveLength(hostile.length);
      for (const name of names) expect(name).toMatch(/^[0-9a-f]+$/);
      const listed = await store.list({ limit: 100 });
      expect(listed.records.map((record) => record.memberId)).toStrictEqual([...hostile].sort());
    });

    it('treats a case-only difference in memberId as two portals (hex is case-proof)', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('AbC'));
      await store.upsert(sampleRecord('abc', { domain: 'lower.bitrix24.com' }));
      expect((await store.get('AbC'))?.domain).toBe('acme.bitrix24.com');
      expect((await store.get('abc'))?.domain).toBe('lower.bitrix24.com');
    });

    it('rejects a memberId too long for a file name with a TypeError and writes nothing', async () => {
      const store = getStore();
      await expect(store.upsert(sampleRecord('x'.repeat(101)))).rejects.toBeInstanceOf(TypeError);
      await expect(store.get('я'.repeat(51))).rejects.toBeInstanceOf(TypeError);
      expect((await store.upsert(sampleRecord('x'.repeat(100)))).version).toBe(1);
      expect(await readdir(store.directory)).toHaveLength(1);
    });

    it('reports a corrupt record file as a StoreError without quoting the file', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('member'));
      const path = await newestFile(store.directory, hex('member'));
      await writeFile(path, `{"format":2,"record":{"accessToken":"${SECRET}`);
      for (const attempt of [
        () => store.get('member'),
        () => store.update('member', 1, { expires: 1 }),
        () => store.upsert(sampleRecord('member')),
        () => store.list(),
      ]) {
        const error: unknown = await attempt().catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(StoreError);
        expect((error as StoreError).code).toBe('STORE_FAILURE');
        expect((error as StoreError).message).toMatch(/corrupt/);
        expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain(SECRET);
      }
      // The corrupt file is left for a human to look at, not overwritten.
      expect(await readFile(path, 'utf8')).toContain(SECRET);
    });

    it('reports a record with a wrong field type, or filed under another memberId, as corrupt', async () => {
      const store = getStore();
      const record = { ...sampleRecord('member'), accessToken: SECRET, version: 1 };
      await store.upsert(sampleRecord('member'));
      const path = await newestFile(store.directory, hex('member'));
      await writeFile(path, JSON.stringify({ format: 2, record: { ...record, expires: 'soon' } }));
      await expect(store.get('member')).rejects.toThrow(/corrupt \(bad field expires\)/);
      await writeFile(path, JSON.stringify({ format: 2, record: { ...record, memberId: 'other' } }));
      await expect(store.get('member')).rejects.toThrow(/memberId does not match/);
      await writeFile(path, JSON.stringify({ format: 99, record }));
      await expect(store.get('member')).rejects.toThrow(/unknown format/);
    });

    it('counts versions up to Number.MAX_SAFE_INTEGER exactly and refuses to go past it', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('member'));
      const near = { ...sampleRecord('member'), version: Number.MAX_SAFE_INTEGER - 1 };
      await writeFile(await newestFile(store.directory, hex('member')), JSON.stringify({ format: 2, record: near }));
      const last = await store.update('member', Number.MAX_SAFE_INTEGER - 1, { accessToken: 'last' });
      expect(last.ok && last.record.version).toBe(Number.MAX_SAFE_INTEGER);
      expect((await store.get('member'))?.version).toBe(Number.MAX_SAFE_INTEGER);
      await expect(store.update('member', Number.MAX_SAFE_INTEGER, { accessToken: 'over' })).rejects.toBeInstanceOf(
        StoreError,
      );
      await expect(store.upsert(sampleRecord('member'))).rejects.toBeInstanceOf(StoreError);
      expect((await store.get('member'))?.accessToken).toBe('last');
    });

    it('list skips temp files, lock files and files it did not write', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('member'));
      const held = await store.tryLock('member', 10_000);
      await writeFile(join(store.directory, `.${hex('member')}.0011223344556677.tmp`), 'partial');
      await writeFile(join(store.directory, 'README.json'), '{}');
      await writeFile(join(store.directory, 'ABCD.json'), '{}');
      await writeFile(join(store.directory, 'ff.json'), '{}');
      await writeFile(join(store.directory, hex('a file')), '{}'); // a file where a chain's directory would be
      await mkdir(join(store.directory, hex('no version')), { mode: 0o700 }); // a first write that died before its link
      const page = await store.list();
      expect(page.records.map((record) => record.memberId)).toStrictEqual(['member']);
      await held?.release();
    });

    it('waits for a write lock another writer holds briefly instead of failing', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('member'));
      const wlock = join(store.directory, `${hex('member')}.wlock`);
      await writeFile(wlock, JSON.stringify({ token: 'other-writer', expiresAt: Date.now() + 60_000 }));
      const started = Date.now();
      const pending = store.update('member', 1, { accessToken: 'after-wait' });
      setTimeout(() => void rm(wlock, { force: true }), 150);
      const result = await pending;
      expect(result.ok).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    });

    it('takes over the write lock of a writer that crashed holding it once its lease lapses', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('member'));
      const wlock = join(store.directory, `${hex('member')}.wlock`);
      await writeFile(wlock, JSON.stringify({ token: 'crashed-writer', expiresAt: Date.now() + 200 }));
      expect((await store.update('member', 1, { accessToken: 'after-crash' })).ok).toBe(true);
      await writeFile(wlock, 'garbage left by a crash');
      expect((await store.update('member', 2, { accessToken: 'after-garbage' })).ok).toBe(true);
    });

    it('the public lock and the internal write lock do not block each other', async () => {
      const store = getStore();
      await store.upsert(sampleRecord('member'));
      const lease = await store.tryLock('member', 10_000);
      expect(lease).toBeDefined();
      expect((await store.update('member', 1, { accessToken: 'under-lock' })).ok).toBe(true);
      expect(await store.delete('member')).toBe(true);
      await lease?.release();
    });

    it('clears a takeover guard left by a crashed process', async () => {
      const store = getStore();
      const lapsed = await store.tryLock('member', 1);
      expect(lapsed).toBeDefined();
      const guard = join(store.directory, `${hex('member')}.lock.guard`);
      await writeFile(guard, '');
      const old = new Date(Date.now() - 10_000);
      await utimes(guard, old, old);
      await new Promise((resolve) => setTimeout(resolve, 5));
      const taker = await store.tryLock('member', 10_000);
      expect(taker).toBeDefined();
      await taker?.release();
      expect(await readdir(store.directory)).toStrictEqual([]);
    });

    it('of many store instances racing to take over one lapsed lease exactly one wins, round after round', async () => {
      const first = getStore();
      const stores = Array.from({ length: 8 }, () => new FileTokenStore({ directory: first.directory }));
      for (let round = 0; round < 15; round++) {
        const lapsed = await first.tryLock('member', 1);
        expect(lapsed).toBeDefined();
        await new Promise((resolve) => setTimeout(resolve, 3));
        const leases = await Promise.all(stores.map((store) => store.tryLock('member', 10_000)));
        const winners = leases.filter((lease) => lease !== undefined);
        expect(winners).toHaveLength(1);
        await winners[0]?.release();
      }
    });
  },
});

describe('FileTokenStore options', () => {
  let store: FileTokenStore;
  beforeEach(async () => {
    store = await freshStore();
  });
  afterEach(async () => {
    await removeStore(store);
  });

  it('writes files with the configured fileMode', async () => {
    if (process.platform === 'win32') return;
    const custom = new FileTokenStore({ directory: store.directory, fileMode: 0o640 });
    await custom.upsert(sampleRecord('member'));
    expect((await stat(await newestFile(store.directory, hex('member')))).mode & 0o777).toBe(0o640);
  });

  it('measures leases by the injected clock', async () => {
    let now = 5_000;
    const clocked = new FileTokenStore({ directory: store.directory, now: () => now });
    const lease = await clocked.tryLock('member', 1_000);
    expect(lease?.expiresAt).toBe(6_000);
    now = 5_999;
    expect(await clocked.tryLock('member', 1_000)).toBeUndefined();
    now = 6_000;
    expect(await clocked.tryLock('member', 1_000)).toBeDefined();
  });

  it('rejects bad options with a TypeError', () => {
    expect(() => new FileTokenStore({ directory: '' })).toThrow(TypeError);
    expect(() => new FileTokenStore({ directory: store.directory, fileMode: 0o1777 })).toThrow(/fileMode/);
  });

  it('reads a directory that does not exist yet as empty, without creating it', async () => {
    expect(await store.get('member')).toBeUndefined();
    expect(await store.list()).toStrictEqual({ records: [], next: undefined });
    expect(await store.listChains('member')).toStrictEqual([]);
    expect(await store.delete({ memberId: 'member', chain: 'user:1' })).toBe(false);
    expect(await store.deletePortal('member')).toBe(0);
    await expect(stat(store.directory)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await store.delete('member')).toBe(false);
  });
});
