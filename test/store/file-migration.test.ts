// FileTokenStore on a directory written by an earlier release (format 1: one `<hex>.json` file per
// chain, records maybe older than chains): read as it is, each chain moved into its directory of
// version files by its first write, and what a migration killed half-way leaves behind cleaned up.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileTokenStore } from '../../src/store/file/store.js';
import { chainRecord, sampleRecord, withVersion } from '../../src/testing/conformance/records.js';
import { everything, hex } from './fixtures/file-layout.js';

const SECRET = 'SECRET-ACCESS-TOKEN-7f3a';
let base: string;
let directory: string;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'b24pt-file-migration-'));
  directory = join(base, 'portals');
  await mkdir(directory, { recursive: true, mode: 0o700 });
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

/** Writes a chain's file as a format-1 release did: `<stem>.json` in the store's directory. */
async function oldFile(stem: string, content: object): Promise<void> {
  await writeFile(join(directory, `${stem}.json`), JSON.stringify({ format: 1, ...content }), { mode: 0o600 });
}

/** A directory as the previous release left it: portal a (v3) with user 7's chain (v2), b deleted at v5, c (v1). */
async function oldDirectory(): Promise<void> {
  await oldFile(hex('a'), { record: withVersion(sampleRecord('a', { accessToken: SECRET }), 3) });
  await oldFile(`${hex('a')}.user-7`, { record: withVersion(chainRecord('a', 7, { refreshToken: SECRET }), 2) });
  await oldFile(hex('b'), { deleted: { memberId: 'b', version: 5 } });
  await oldFile(hex('c'), { record: withVersion(sampleRecord('c'), 1) });
}

describe('FileTokenStore on a directory of the format-1 layout', () => {
  it('reads every chain as it is, lists them in order, and writes nothing', async () => {
    await oldDirectory();
    const before = (await readdir(directory)).sort();
    const store = new FileTokenStore({ directory });
    expect((await store.get('a'))?.version, 'an old record reads').toBe(3);
    expect(await store.get('b'), 'an old tombstone reads as no record').toBeUndefined();
    expect((await store.list()).records.map((r) => [r.memberId, r.version]), 'list reads old files').toStrictEqual([
      ['a', 3],
      ['c', 1],
    ]);
    expect((await store.listChains('a')).map((r) => [r.chain, r.version]), 'listChains reads old files').toStrictEqual([['user:7', 2]]);
    expect((await readdir(directory)).sort(), 'reading changed nothing on disk').toStrictEqual(before);
  });

  it("a chain's first write moves it into its directory, continuing its version; the others keep working", async () => {
    await oldDirectory();
    const store = new FileTokenStore({ directory });
    const updated = await store.update('a', 3, { accessToken: 'next' });
    expect(updated.ok && updated.record.version, 'the first write continues the old version').toBe(4);
    const names = await readdir(directory);
    expect(names, 'the chain has its directory').toContain(hex('a'));
    expect(names, 'and its old file is gone').not.toContain(`${hex('a')}.json`);
    expect(await readdir(join(directory, hex('a'))), 'holding the new version').toStrictEqual(['1.json']);
    expect((await store.update('a', 3, { accessToken: 'stale' })).ok, 'a write based on the old file conflicts').toBe(false);
    expect((await store.list()).records.map((r) => [r.memberId, r.version]), 'list spans both layouts, in order').toStrictEqual([
      ['a', 4],
      ['c', 1],
    ]);
    expect((await store.upsert(sampleRecord('b'))).version, "a deleted chain's version continues from its old tombstone").toBe(6);
    expect((await store.get('c'))?.version, 'an untouched chain still reads from its old file').toBe(1);
  });

  it('deletePortal deletes chains of both layouts and leaves no token of them on disk', async () => {
    await oldDirectory();
    const store = new FileTokenStore({ directory });
    expect(await store.deletePortal('a'), 'the portal chain and the old user chain').toBe(2);
    expect(await everything(directory), 'no token of the deleted portal remains').not.toContain(SECRET);
    expect(await store.listChains('a'), 'no chain is left').toStrictEqual([]);
    expect((await store.upsert(chainRecord('a', 7))).version, 'the user chain continues its version').toBe(3);
  });

  it('ready() removes an old file that a migration killed after its link left behind, and keeps one not yet migrated', async () => {
    // Killed between linking the first version and removing the old file: the old file holds old tokens.
    await oldFile(hex('a'), { record: withVersion(sampleRecord('a', { accessToken: SECRET }), 3) });
    await mkdir(join(directory, hex('a')), { mode: 0o700 });
    await writeFile(join(directory, hex('a'), '1.json'), JSON.stringify({ format: 2, record: withVersion(sampleRecord('a'), 4) }));
    // Killed before its link: the old file is still the chain's record.
    await oldFile(hex('c'), { record: withVersion(sampleRecord('c'), 1) });
    await mkdir(join(directory, hex('c')), { mode: 0o700 });
    const store = new FileTokenStore({ directory });
    expect((await store.get('a'))?.version, 'the new version wins before any cleanup').toBe(4);
    await store.ready();
    expect(await everything(directory), "the leftover's tokens are gone").not.toContain(SECRET);
    expect(await readdir(directory), 'the chain not yet migrated keeps its old file').toContain(`${hex('c')}.json`);
    expect((await store.get('c'))?.version, 'and reads from it').toBe(1);
    expect((await store.update('c', 1, { scope: 'crm' })).ok, 'and its next write migrates it').toBe(true);
    expect(await readdir(directory), 'the old file is gone then').not.toContain(`${hex('c')}.json`);
  });
});

describe('FileTokenStore on a directory written before chains existed', () => {
  it('reads a record without a chain as the portal chain and keeps writing it', async () => {
    await mkdir(directory, { recursive: true });
    const { eventTs: _ignored, ...old } = { ...sampleRecord('member'), version: 3 };
    await writeFile(join(directory, `${hex('member')}.json`), JSON.stringify({ format: 1, record: old }));
    const store = new FileTokenStore({ directory });
    expect(await store.get('member'), 'an old record reads as the portal chain').toStrictEqual({ ...old, chain: 'portal', eventTs: null });
    expect((await store.list()).records, 'and is listed').toHaveLength(1);
    expect(await store.listChains('member'), 'it has no user chains').toStrictEqual([]);
    const updated = await store.update('member', 3, { accessToken: 'next' });
    expect(updated.ok && updated.record.version, 'a conditional write on it continues the version').toBe(4);
  });

  it('continues the version of an old tombstone', async () => {
    await mkdir(directory, { recursive: true });
    await writeFile(join(directory, `${hex('member')}.json`), JSON.stringify({ format: 1, deleted: { memberId: 'member', version: 9 } }));
    const store = new FileTokenStore({ directory });
    expect(await store.get('member'), 'an old tombstone reads as no record').toBeUndefined();
    expect((await store.upsert(sampleRecord('member'))).version, 'a re-created record continues from it').toBe(10);
  });
});

