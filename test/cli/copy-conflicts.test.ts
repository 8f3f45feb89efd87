// Issue 20 case 4: `migrate` run twice wrote the source's spent pair over the target's newer chain
// (the portal was revoked at its next refresh while the tool said "verify ok"). A bulk copy never
// writes over a target chain that moved on: it reports each conflict and exits non-zero.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateReport, runMigrate } from '../../src/cli/migrate.js';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { memoryIo } from './helpers.js';

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});

async function profile(pool: PortalClientPool, memberId: string): Promise<boolean> {
  try {
    await (await pool.clientFor(memberId)).actions.v2.call.make({ method: 'profile' });
    return true;
  } catch {
    return false;
  }
}

describe('a bulk copy never writes over a chain that moved on (issue 20 case 4)', () => {
  it('migrate run twice, the target\u2019s app having refreshed in between: conflict reported, exit 1, the portal keeps working', async () => {
    const source = new MemoryTokenStore();
    const target = new MemoryTokenStore();
    const portal = b24.addPortal();
    await seedStore(source, b24, portal.memberId, { expired: true });
    const first = await runMigrate(source, target, memoryIo(), { dryRun: false, pageSize: 10, concurrency: 2 });
    expect(migrateReport(first, false).ok).toBe(true);

    // The new app runs on the target: its first call refreshes the copied chain (the source's pair is now spent).
    const app = new PortalClientPool({ ...b24.trust, store: target, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger });
    expect(await profile(app, portal.memberId)).toBe(true);
    const moved = await target.get(portal.memberId);

    const second = await runMigrate(source, target, memoryIo(), { dryRun: false, pageSize: 10, concurrency: 2 });
    const report = migrateReport(second, false);
    expect(report.ok).toBe(false);
    expect(second.conflicts.map((c) => c.memberId)).toStrictEqual([portal.memberId]);
    expect(report.text).toMatch(/conflict/);
    expect(await target.get(portal.memberId)).toStrictEqual(moved);

    // The next refresh still works: nothing spent was written back.
    b24.expireAccessTokens();
    const reuseBefore = b24.stats.refreshReuse;
    expect(await profile(app, portal.memberId)).toBe(true);
    expect(b24.stats.refreshReuse).toBe(reuseBefore);
    expect((await target.get(portal.memberId))?.state).toBe('active');
    await app.close();
  });
});
