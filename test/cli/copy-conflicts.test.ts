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
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../src/cli/program.js';
import { OAuthClient } from '../../src/oauth/oauth-client.js';
import { FileTokenStore } from '../../src/store/file/store.js';
import type { FakeChain } from '../../src/testing/fake-bitrix24.js';

let b24: FakeBitrix24;
let dir: string;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
  dir = await mkdtemp(join(tmpdir(), 'b24pt-copy-'));
});
afterAll(async () => {
  await b24.close();
  await rm(dir, { recursive: true, force: true });
});

/** One recipe entry (`B24OAuthParams`, as the recipe's `.oauth-store.json` holds it) for a chain. */
function recipeEntry(chain: { accessToken: string; refreshToken: string; expires: number; expiresIn: number; memberId: string; userId: number | null }): Record<string, unknown> {
  const portal = b24.portal(chain.memberId)!;
  return {
    applicationToken: portal.applicationToken, userId: chain.userId, memberId: chain.memberId, accessToken: chain.accessToken,
    refreshToken: chain.refreshToken, expires: chain.expires, expiresIn: chain.expiresIn, scope: portal.scope, domain: portal.domain,
    clientEndpoint: portal.clientEndpoint, serverEndpoint: b24.serverEndpoint, status: portal.status,
  };
}

async function writeRecipe(file: string, chains: FakeChain[] | Record<string, unknown>[]): Promise<void> {
  const body: Record<string, unknown> = {};
  for (const c of chains) body[String(c['memberId' as keyof typeof c])] = 'refreshToken' in c && 'expiresIn' in c ? recipeEntry(c as FakeChain) : c;
  await writeFile(file, JSON.stringify(body));
}

/** Whether the stored refresh token still refreshes at the stand-in (the chain is alive). */
async function alive(refreshToken: string): Promise<boolean> {
  const oauth = new OAuthClient({ clientId: b24.clientId, clientSecret: b24.clientSecret });
  return oauth.refresh(b24.oauthUrl, refreshToken).then(() => true, () => false);
}

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

  it('import-recipe while the old app still refreshed, then again: the stored chain is live (proven at the OAuth host)', async () => {
    const env = { B24PT_CLIENT_ID: b24.clientId, B24PT_CLIENT_SECRET: b24.clientSecret, B24PT_OAUTH_HOSTS: b24.oauthUrl };
    const portal = b24.addPortal();
    const file = join(dir, 'recipe-1.json');
    const target = join(dir, 'tokens-1');
    const c0 = b24.issueChain(portal.memberId);
    await writeRecipe(file, [c0]);
    expect(await runCli(['import-recipe', file, '--to', `file:${target}`], memoryIo(env))).toBe(0);

    // The old app, still running, refreshes its copy and writes the file again when that works.
    const oldApp = new OAuthClient({ clientId: b24.clientId, clientSecret: b24.clientSecret });
    const refreshed = await oldApp.refresh(b24.oauthUrl, c0.refreshToken).catch(() => undefined);
    if (refreshed !== undefined) {
      await writeRecipe(file, [{ ...recipeEntry(c0), accessToken: refreshed.accessToken, refreshToken: refreshed.refreshToken, expires: refreshed.expires }]);
    }
    const again = memoryIo(env);
    await runCli(['import-recipe', file, '--to', `file:${target}`], again);
    const stored = await new FileTokenStore({ directory: target }).get(portal.memberId);
    expect(stored?.state).toBe('active');
    expect(await alive(stored!.refreshToken)).toBe(true);
  });

  it('import-recipe: a live chain in the file replaces a dead one in the store; a dead one in the file is refused', async () => {
    const env = { B24PT_CLIENT_ID: b24.clientId, B24PT_CLIENT_SECRET: b24.clientSecret, B24PT_OAUTH_HOSTS: b24.oauthUrl };
    const live = b24.addPortal();
    const dead = b24.addPortal();
    const target = join(dir, 'tokens-2');
    const store = new FileTokenStore({ directory: target });
    await seedStore(store, b24, live.memberId, { record: { state: 'revoked', revokedReason: 'invalid_grant', revokedAt: Date.now() } });
    const spent = b24.issueChain(dead.memberId);
    await new OAuthClient({ clientId: b24.clientId, clientSecret: b24.clientSecret }).refresh(b24.oauthUrl, spent.refreshToken);
    const file = join(dir, 'recipe-2.json');
    await writeRecipe(file, [b24.issueChain(live.memberId), spent]);
    const run = memoryIo(env);
    expect(await runCli(['import-recipe', file, '--to', `file:${target}`], run)).toBe(1);
    expect(run.stdout).toContain('imported 1');
    expect(run.stdout).toMatch(new RegExp(`rejected ${dead.memberId}: the OAuth host refused the chain`));
    const replaced = await store.get(live.memberId);
    expect(replaced?.state).toBe('active');
    expect(await alive(replaced!.refreshToken)).toBe(true);
    expect(await store.get(dead.memberId)).toBeUndefined();
  });
});
