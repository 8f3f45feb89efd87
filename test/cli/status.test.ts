// `status`: pages through the store with a bounded page size, prints a table or one JSON document,
// never a token; exit codes for usage errors and an unreachable store.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runStatus, statusRow } from '../../src/cli/status.js';
import { FileTokenStore } from '../../src/store/file/store.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { SqliteTokenStore } from '../../src/store/sqlite/index.js';
import { memoryIo, recordInput, runBinary, seedPortals, TOKEN } from './helpers.js';
import { DIST_WAIT_MS, distReady } from '../support/dist.js';

beforeAll(distReady, DIST_WAIT_MS); // dist/ may still be building (test/global-setup.ts)

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'b24pt-cli-status-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('status in process', () => {
  it('reads the store page by page with a bounded page size, never all at once', async () => {
    const store = new MemoryTokenStore();
    await seedPortals(store, 250);
    await store.upsert(recordInput(3, { chain: 'user:7', userId: 7 }));
    const list = vi.spyOn(store, 'listAll'); // every chain, one walk (issue 20 case 5)
    const io = memoryIo();
    const summary = await runStatus(store, io, { json: true, lapseDays: 180, pageSize: 40, userChains: true, now: Date.now() });
    expect(summary).toMatchObject({ portals: 250, chains: 251, active: 251 });
    expect(list.mock.calls.length).toBe(Math.ceil(251 / 40));
    for (const [options] of list.mock.calls) expect(options?.limit).toBeLessThanOrEqual(40);
    const doc = JSON.parse(io.stdout) as { portals: unknown[]; summary: unknown };
    expect(doc.portals).toHaveLength(251);
    expect(io.stdout).not.toMatch(TOKEN);
  });

  it('builds rows from an allow-list: no token field, whatever the record holds', () => {
    const now = Date.now();
    const record = { ...recordInput(1, { chainUpdatedAt: now - 10 * 86_400_000 }), chain: 'portal' as const, eventTs: null, version: 4, extra: 'x' };
    const row = statusRow(record, now, 180);
    expect(Object.keys(row).sort()).toEqual(['chain', 'chainAgeDays', 'daysUntilLapse', 'domain', 'memberId', 'reason', 'state', 'tokenExpires', 'version']);
    expect(row).toMatchObject({ chainAgeDays: 10, daysUntilLapse: 170, version: 4 });
    expect(statusRow({ ...record, state: 'revoked', revokedReason: 'invalid_grant' }, now, 180)).toMatchObject({ daysUntilLapse: null, reason: 'invalid_grant' });
  });
});

describe('status binary', () => {
  it('prints a table and a summary for a file store, and JSON with --json', async () => {
    const path = join(dir, 'file');
    const store = new FileTokenStore({ directory: path });
    const now = Date.now();
    await store.upsert(recordInput(1, { chainUpdatedAt: now - 170 * 86_400_000 }));
    await store.upsert(recordInput(2, { state: 'revoked', revokedReason: 'invalid_grant', revokedAt: now }));
    await store.upsert(recordInput(2, { chain: 'user:5', userId: 5 }));
    const table = await runBinary(['status', '--store', `file:${path}`]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/MEMBER ID\s+CHAIN\s+DOMAIN/);
    expect(table.stdout).toContain('revoked (invalid_grant)');
    expect(table.stdout).toMatch(/user:5/);
    expect(table.stdout).toContain('2 portals, 3 chains: 2 active, 1 revoked, 0 suspended; 1 active within 30 days of lapsing');
    const json = await runBinary(['status', '--json', '--lapse-days', '200'], { B24PT_STORE: `file:${path}` });
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as { portals: { memberId: string; daysUntilLapse: number | null }[]; summary: { chains: number } };
    expect(doc.summary.chains).toBe(3);
    expect(doc.portals[0]).toMatchObject({ daysUntilLapse: 30 });
    for (const run of [table, json]) expect(run.stdout + run.stderr).not.toMatch(TOKEN);
  });

  it('reads a SQLite store', async () => {
    const filename = join(dir, 'tokens.db');
    const store = new SqliteTokenStore({ filename });
    await seedPortals(store, 5, 1);
    await store.close();
    const run = await runBinary(['status', '-s', `sqlite:${filename}`]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('5 portals, 5 chains: 5 active');
  });

  it('exits 2 on usage errors and 1 with advice when the store is down', async () => {
    expect((await runBinary(['status'])).code).toBe(2);
    expect((await runBinary(['status', '--store', 'ftp://x'])).code).toBe(2);
    const typo = await runBinary(['status', '--store', `file:${join(dir, 'no-such-dir')}`]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('does not exist');
    expect((await runBinary(['nonsense'])).code).toBe(2);
    expect((await runBinary(['migrate', '--from', 'memory:', '--to', 'memory:'])).code).toBe(2);
    expect((await runBinary(['status', '--page-size', 'zero', '--store', 'memory:'])).code).toBe(2);
    const down = await runBinary(['status', '--store', 'postgres://postgres:secret@127.0.0.1:1/test']);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('start PostgreSQL or check the URL');
    expect(down.stderr).not.toContain('secret');
    const keys = await runBinary(['status', '--store', 'memory:'], { B24PT_KEYS: 'k1' });
    expect(keys.code).toBe(2);
    expect(keys.stderr).toContain('B24PT_KEYS');
  });
});
