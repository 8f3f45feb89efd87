// Issue 20 case 5: whole-store walks walked portals and then their chains, so a user's chain with no
// portal chain (`rememberUser` before the install arrived) was dropped by `migrate` ("verify ok"),
// left on the old key by `rekey` ("0 failed") and missing from `status`. Every walk visits every chain.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateReport, runMigrate } from '../../src/cli/migrate.js';
import { runCli } from '../../src/cli/program.js';
import { EncryptedTokenStore } from '../../src/store/encrypted/store.js';
import { FileTokenStore } from '../../src/store/file/store.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { SqliteTokenStore } from '../../src/store/sqlite/index.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { SERVICES, serviceAvailable } from '../support/services.js';
import { dropPostgresPrefix, memoryIo, recordInput } from './helpers.js';
import { DIST_WAIT_MS, distReady } from '../support/dist.js';

beforeAll(distReady, DIST_WAIT_MS); // dist/ may still be building (test/global-setup.ts)

let dir: string;
const pgAvailable = await serviceAvailable('postgres');
const prefix = `every_chain_${process.pid}`;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'b24pt-every-chain-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  if (pgAvailable) await dropPostgresPrefix(SERVICES.postgres.url, prefix);
});

/** Portal 1 with its chain and user 7's; portal 2 with only user 9's chain (no portal chain). */
async function seed(store: TokenStore): Promise<void> {
  await store.upsert(recordInput(1));
  await store.upsert(recordInput(1, { chain: 'user:7', userId: 7 }));
  await store.upsert(recordInput(2, { chain: 'user:9', userId: 9 }));
  await store.upsert(recordInput(3));
}

const stores: [string, () => TokenStore][] = [
  ['memory', () => new MemoryTokenStore()],
  ['file', () => new FileTokenStore({ directory: join(dir, `f${Math.random()}`) })],
  ['sqlite', () => new SqliteTokenStore({ filename: join(dir, `s${Math.random()}.db`) })],
];
if (pgAvailable) stores.push(['postgres', () => new PostgresTokenStore({ connectionString: SERVICES.postgres.url, tablePrefix: `${prefix}_${Math.floor(Math.random() * 1e6)}` })]);

describe('every walk visits every chain (issue 20 case 5)', () => {
  it.each(stores)('%s: migrate copies the user chain that has no portal chain, and counts it', async (_, make) => {
    const source = make();
    const target = new MemoryTokenStore();
    await seed(source);
    const result = await runMigrate(source, target, memoryIo(), { dryRun: false, pageSize: 1, concurrency: 2 });
    expect(result.scanned).toBe(4);
    expect(migrateReport(result, false).ok).toBe(true);
    expect((await target.get({ memberId: recordInput(2).memberId, chain: 'user:9' }))?.userId).toBe(9);
    await source.close?.();
  });

  it('status lists it and rekey re-seals it (file store, through the CLI)', async () => {
    const k1 = Buffer.alloc(32, 1).toString('base64');
    const k2 = Buffer.alloc(32, 2).toString('base64');
    const directory = join(dir, 'cli');
    await seed(new EncryptedTokenStore(new FileTokenStore({ directory }), { keys: { k1 }, writeKeyId: 'k1' }));
    const status = memoryIo({ B24PT_KEYS: `k1:${k1}` });
    expect(await runCli(['status', '--store', `file:${directory}`], status)).toBe(0);
    expect(status.stdout).toContain(recordInput(2).memberId);
    expect(status.stdout).toMatch(/3 portals, 4 chains/);

    const rekey = memoryIo({ B24PT_KEYS: `k2:${k2},k1:${k1}` });
    expect(await runCli(['rekey', '--store', `file:${directory}`], rekey)).toBe(0);
    expect(rekey.stdout).toMatch(/4 scanned, 4 re-encrypted/);
    const raw = await new FileTokenStore({ directory }).get({ memberId: recordInput(2).memberId, chain: 'user:9' });
    expect(raw?.refreshToken).toMatch(/^v2\.k2\./);
  });
});
