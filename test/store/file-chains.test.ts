// FileTokenStore beyond the conformance suite: the on-disk layout of chains, ready(), stale temp
// files of killed writers, lease renew and the injected clock (old layouts: file-migration.test.ts).
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { StoreError } from '../../src/errors.js';
import { FileTokenStore } from '../../src/store/file/store.js';
import { chainRecord, sampleRecord, withVersion } from '../../src/testing/conformance/records.js';
import { everything as everythingIn, hex, newestFile } from './fixtures/file-layout.js';
const SECRET = 'SECRET-ACCESS-TOKEN-7f3a';
const run = promisify(execFile);

let base: string;
let directory: string;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'b24pt-file-chains-'));
  directory = join(base, 'portals');
});

afterEach(async () => {
  await run('chattr', ['-i', directory]).catch(() => undefined);
  await chmod(directory, 0o700).catch(() => undefined);
  await rm(base, { recursive: true, force: true });
});

/** Every file's text under the directory, joined: for "no token anywhere" checks. */
const everything = (): Promise<string> => everythingIn(directory);

describe('FileTokenStore chain files', () => {
  it("keeps a user chain in its own directory beside the portal's, which list ignores", async () => {
    const store = new FileTokenStore({ directory });
    await store.upsert(sampleRecord('member'));
    await store.upsert(chainRecord('member', 7));
    expect((await readdir(directory)).sort(), 'one directory per chain').toStrictEqual([hex('member'), `${hex('member')}.user-7`].sort());
    expect((await store.list()).records.map((r) => r.chain), 'list reads portal chain files only').toStrictEqual(['portal']);
    expect((await store.listChains('member')).map((r) => r.chain), 'listChains reads the user chain file').toStrictEqual([
      'user:7',
    ]);
  });

  it('turns a deleted user chain into a tombstone naming its chain and holding no token', async () => {
    const store = new FileTokenStore({ directory });
    await store.upsert(chainRecord('member', 7, { accessToken: SECRET }));
    expect(await store.delete({ memberId: 'member', chain: 'user:7' }), 'the user chain was deleted').toBe(true);
    const text = await readFile(await newestFile(directory, `${hex('member')}.user-7`), 'utf8');
    expect(JSON.parse(text), 'the tombstone keeps the version and the chain').toStrictEqual({
      format: 2,
      deleted: { memberId: 'member', chain: 'user:7', version: 1 },
    });
    expect(text, 'a tombstone holds no token').not.toContain(SECRET);
  });

  it('deletePortal leaves only tombstones: no token of any chain remains on disk', async () => {
    const store = new FileTokenStore({ directory });
    await store.upsert(sampleRecord('member', { accessToken: SECRET }));
    await store.upsert(chainRecord('member', 2, { refreshToken: SECRET }));
    await store.upsert(chainRecord('member', 30, { accessToken: SECRET }));
    await store.upsert(sampleRecord('other', { accessToken: 'other-token' }));
    expect(await store.deletePortal('member'), 'three chains deleted').toBe(3);
    const texts = await everything();
    expect(texts, 'no token of the deleted portal remains').not.toContain(SECRET);
    expect(texts, "another portal's record is untouched").toContain('other-token');
    expect((await store.upsert(chainRecord('member', 30))).version, 'the version continues from the tombstone').toBe(2);
  });

  it('reports a record filed under another chain as corrupt', async () => {
    const store = new FileTokenStore({ directory });
    await store.upsert(chainRecord('member', 7));
    const moved = { format: 2, record: { ...withVersion(chainRecord('member', 8), 1), accessToken: SECRET } };
    await writeFile(await newestFile(directory, `${hex('member')}.user-7`), JSON.stringify(moved));
    const error: unknown = await store.get({ memberId: 'member', chain: 'user:7' }).catch((caught: unknown) => caught);
    expect(error, 'a record under the wrong chain is a StoreError').toBeInstanceOf(StoreError);
    expect(String(error), 'the error says why').toMatch(/chain does not match the file name/);
    expect(String(error), 'the error never quotes a token').not.toContain(SECRET);
  });
});

describe('FileTokenStore.ready', () => {
  it('creates the directory with mode 0700 and resolves again when called twice', async () => {
    const store = new FileTokenStore({ directory });
    await store.ready();
    await store.ready();
    const info = await stat(directory);
    expect(info.isDirectory(), 'ready() creates the directory').toBe(true);
    if (process.platform !== 'win32') expect(info.mode & 0o777, 'the directory is private').toBe(0o700);
    expect(await readdir(directory), 'ready() leaves no probe file behind').toStrictEqual([]);
  });

  it('fails fast with a StoreError saying what to fix when the path is a file, and changes nothing', async () => {
    await writeFile(directory, 'not a directory');
    const store = new FileTokenStore({ directory });
    const error: unknown = await store.ready().catch((caught: unknown) => caught);
    expect(error, 'a file in the way is a StoreError').toBeInstanceOf(StoreError);
    expect(String(error), 'the error names the path and the fix').toMatch(/is not a directory .*remove the file or choose another directory/);
    expect((error as StoreError).transient, 'a file in the way does not pass by itself').toBe(false);
    await expect(store.upsert(sampleRecord('member')), 'a write fails the same way').rejects.toThrow(/is not a directory/);
    expect(await readFile(directory, 'utf8'), 'the file is left as it was').toBe('not a directory');
    const nested = new FileTokenStore({ directory: join(directory, 'below') });
    await expect(nested.ready(), 'a file among the parents is reported too').rejects.toThrow(/is not a directory/);
  });

  it('fails fast with a StoreError when the directory is not writable', async (context) => {
    await mkdir(directory, { recursive: true, mode: 0o700 });
    if (process.getuid?.() === 0) {
      // root ignores permission bits: make the directory immutable instead, where the file system allows it.
      const made = await run('chattr', ['+i', directory]).then(
        () => true,
        () => false,
      );
      if (!made) context.skip();
    } else {
      await chmod(directory, 0o500);
    }
    const store = new FileTokenStore({ directory });
    const error: unknown = await store.ready().catch((caught: unknown) => caught);
    expect(error, 'an unwritable directory is a StoreError').toBeInstanceOf(StoreError);
    expect(String(error), 'the error says what to fix').toMatch(/is not writable by this process .*give its user write access/);
    await expect(store.upsert(sampleRecord('member')), 'a write fails the same way').rejects.toBeInstanceOf(StoreError);
  });
});

describe('FileTokenStore stale temp files', () => {
  it('ready() removes temp files old enough to be a dead writer’s and keeps fresh ones', async () => {
    await mkdir(directory, { recursive: true });
    const stale = [
      `.${hex('member')}.0011223344556677.tmp`, // the random-named temp file of earlier releases
      `.${hex('member')}.user-3.${randomUUID()}.tmp`,
      `.${hex('member')}.wlock.8899aabbccddeeff.tmp`,
    ];
    const fresh = `.${hex('other')}.${randomUUID()}.tmp`; // maybe a live writer's
    const foreign = '.notes.tmp';
    const hourAgo = new Date(Date.now() - 3_600_000);
    for (const name of [...stale, fresh, foreign]) await writeFile(join(directory, name), `{"accessToken":"${SECRET}"}`);
    for (const name of [...stale, foreign]) await utimes(join(directory, name), hourAgo, hourAgo);
    await new FileTokenStore({ directory }).ready();
    expect((await readdir(directory)).sort(), 'stale temp files are gone; a fresh one and a foreign file stay').toStrictEqual(
      [foreign, fresh].sort(),
    );
  });

  it('the first write of a process sweeps stale temp files without ready()', async () => {
    await mkdir(directory, { recursive: true });
    const stale = join(directory, `.${hex('gone')}.0011223344556677.tmp`);
    await writeFile(stale, SECRET);
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(stale, hourAgo, hourAgo);
    await new FileTokenStore({ directory }).upsert(sampleRecord('member'));
    await expect(stat(stale), 'the first write removed the stale temp file').rejects.toMatchObject({ code: 'ENOENT' });
  });

  it("the chain's next write removes the temp file of a writer killed mid-write", async () => {
    const store = new FileTokenStore({ directory });
    await store.upsert(sampleRecord('member'));
    // What a writer killed between writing its temp file and renaming it leaves: its write lease
    // (lapsed now) and its temp file, named after that lease, full of tokens.
    const token = randomUUID();
    await writeFile(join(directory, `${hex('member')}.wlock`), JSON.stringify({ token, expiresAt: Date.now() - 1 }));
    const temp = join(directory, `.${hex('member')}.${token}.tmp`);
    await writeFile(temp, JSON.stringify({ format: 1, record: { ...sampleRecord('member'), accessToken: SECRET } }));
    expect((await store.update('member', 1, { scope: 'crm' })).ok, 'the next write goes through').toBe(true);
    await expect(stat(temp), "the killed writer's temp file is gone").rejects.toMatchObject({ code: 'ENOENT' });
    expect(await everything(), 'no token of the killed write remains').not.toContain(SECRET);
    expect(await readdir(directory), 'only the chain directory is left').toStrictEqual([hex('member')]);
    expect(await readdir(join(directory, hex('member'))), 'holding the newest version only').toStrictEqual(['2.json']);
  });

  it("a delete removes the temp file of a writer killed mid-write, and deletePortal every chain's", async () => {
    const store = new FileTokenStore({ directory });
    await store.upsert(sampleRecord('member'));
    await store.upsert(chainRecord('member', 4));
    await store.upsert(sampleRecord('other'));
    const token = randomUUID();
    await writeFile(join(directory, `${hex('member')}.user-4.wlock`), JSON.stringify({ token, expiresAt: Date.now() - 1 }));
    await writeFile(join(directory, `.${hex('member')}.user-4.${token}.tmp`), SECRET);
    expect(await store.delete({ memberId: 'member', chain: 'user:4' }), 'the delete goes through').toBe(true);
    expect(await everything(), 'the delete removed the killed writer’s temp file').not.toContain(SECRET);
    const strays = [`.${hex('member')}.0011223344556677.tmp`, `.${hex('member')}.user-4.${randomUUID()}.tmp`];
    const others = `.${hex('other')}.${randomUUID()}.tmp`;
    for (const name of [...strays, others]) await writeFile(join(directory, name), SECRET);
    await store.deletePortal('member');
    const left = await readdir(directory);
    for (const name of strays) expect(left, `deletePortal removed ${name}`).not.toContain(name);
    expect(left, "deletePortal leaves another portal's files alone").toContain(others);
  });
});

describe('FileTokenStore leases and clocks', () => {
  it('renew extends a held lease by the injected clock, and a lease taken over cannot be renewed', async () => {
    let now = 5_000;
    const store = new FileTokenStore({ directory, now: () => now });
    const lease = await store.tryLock('member', 1_000);
    if (lease?.renew === undefined) throw new Error('the file store has renew');
    now = 5_500;
    expect(await lease.renew(1_000), 'a live lease renews').toBe(true);
    expect(lease.expiresAt, 'expiresAt follows the renewal').toBe(6_500);
    now = 6_000;
    expect(await store.tryLock('member', 1_000), 'the renewed lease still excludes at its first expiry').toBeUndefined();
    now = 6_500;
    const taker = await store.tryLock('member', 1_000);
    expect(taker, 'the renewed lease lapses at its new expiry').toBeDefined();
    expect(await lease.renew(1_000), 'a lease that was taken over does not renew').toBe(false);
    now = 6_600;
    expect(await store.tryLock('member', 1_000), "the failed renew left the taker's lease").toBeUndefined();
    await lease.release();
    expect(await store.tryLock('member', 1_000), "the lapsed lease's release left the taker's lease").toBeUndefined();
    await taker?.release();
    expect(await lease.renew(1_000), 'a released lease does not renew').toBe(false);
  });

  /** Advances `clock` only while the store sleeps on it, until `pending` settles. */
  async function driveUntilSettled<T>(clock: ManualClock, pending: Promise<T>, stepMs: number): Promise<T> {
    let settled = false;
    // Settled into a value at once, so a rejection is never left unhandled while the loop runs.
    const outcome = pending.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    void outcome.then(() => (settled = true));
    while (!settled) {
      if (clock.pending > 0) await clock.advance(stepMs);
      else await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const result = await outcome;
    if ('error' in result) throw result.error;
    return result.value;
  }

  it('waits for a write lock on the injected clock and takes it over when the lease lapses', async () => {
    const clock = new ManualClock(1_000_000);
    const store = new FileTokenStore({ directory, clock });
    await store.upsert(sampleRecord('member'));
    const wlock = join(directory, `${hex('member')}.wlock`);
    await writeFile(wlock, JSON.stringify({ token: 'stalled-writer', expiresAt: clock.now() + 1_500 }));
    const result = await driveUntilSettled(clock, store.update('member', 1, { accessToken: 'after-wait' }), 250);
    expect(result.ok, 'the write went through once the lease lapsed').toBe(true);
    expect(clock.now(), 'it waited for the lease by the injected clock').toBeGreaterThanOrEqual(1_001_500);
  });

  it('gives up on a write lock held past the wait with a transient StoreError and writes nothing', async () => {
    const clock = new ManualClock(1_000_000);
    const store = new FileTokenStore({ directory, clock });
    const stored = await store.upsert(sampleRecord('member'));
    await writeFile(join(directory, `${hex('member')}.wlock`), JSON.stringify({ token: 'other', expiresAt: clock.now() + 3_600_000 }));
    const error: unknown = await driveUntilSettled(clock, store.update('member', 1, { accessToken: 'never' }), 1_000).catch(
      (caught: unknown) => caught,
    );
    expect(error, 'the wait ends in a StoreError').toBeInstanceOf(StoreError);
    expect(String(error), 'the error says what timed out').toMatch(/Timed out waiting for the write lock of portal member/);
    expect((error as StoreError).transient, 'a busy lock may pass: transient').toBe(true);
    await rm(join(directory, `${hex('member')}.wlock`));
    expect(await store.get('member'), 'nothing was written').toStrictEqual(stored);
  });
});
