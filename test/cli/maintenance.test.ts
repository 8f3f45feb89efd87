// `sweep`, `reactivate`, `forget` and `rekey` through the binary, against the stand-in Bitrix24.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileTokenStore } from '../../src/store/file/store.js';
import { EncryptedTokenStore } from '../../src/store/encrypted/store.js';
import { SqliteTokenStore } from '../../src/store/sqlite/index.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { recordInput, runBinary, seedPortals, TOKEN } from './helpers.js';
import { DIST_WAIT_MS, distReady } from '../support/dist.js';

beforeAll(distReady, DIST_WAIT_MS); // dist/ may still be building (test/global-setup.ts)

let b24: FakeBitrix24;
let dir: string;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
  dir = await mkdtemp(join(tmpdir(), 'b24pt-cli-maint-'));
});
afterAll(async () => {
  await b24.close();
  await rm(dir, { recursive: true, force: true });
});

describe('sweep and reactivate', () => {
  it('sweep refreshes idle chains and prints a summary; credentials are required', async () => {
    const directory = join(dir, 'sweep');
    const store = new FileTokenStore({ directory });
    const day = 86_400_000;
    const idle = b24.addPortal();
    const fresh = b24.addPortal();
    await seedStore(store, b24, idle.memberId, { record: { chainUpdatedAt: Date.now() - 30 * day } });
    await seedStore(store, b24, fresh.memberId);
    const env = { B24PT_CLIENT_ID: b24.clientId, B24PT_CLIENT_SECRET: b24.clientSecret, B24PT_OAUTH_HOSTS: b24.oauthUrl, B24PT_STORE: `file:${directory}` };
    const missing = await runBinary(['sweep', '--store', `file:${directory}`]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('B24PT_CLIENT_ID');
    const before = (await store.get(idle.memberId))!;
    const swept = await runBinary(['sweep', '--idle-days', '20'], env);
    expect(swept.stderr).toBe('');
    expect(swept.code).toBe(0);
    expect(swept.stdout).toContain('sweep: 2 chains checked, 1 refreshed, 0 revoked, 0 failed');
    const after = (await store.get(idle.memberId))!;
    expect(after.version).toBe(before.version + 1);
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(swept.stdout + swept.stderr).not.toMatch(TOKEN);
  });

  it('reactivate brings back a revoked chain whose refresh token still works, and fails on a dead one', async () => {
    const directory = join(dir, 'reactivate');
    const store = new FileTokenStore({ directory });
    const portal = b24.addPortal();
    await seedStore(store, b24, portal.memberId, { record: { state: 'revoked', revokedReason: 'invalid_grant', revokedAt: Date.now() } });
    const env = { B24PT_CLIENT_ID: b24.clientId, B24PT_CLIENT_SECRET: b24.clientSecret, B24PT_OAUTH_HOSTS: b24.oauthUrl };
    const ok = await runBinary(['reactivate', portal.memberId, '--store', `file:${directory}`], env);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`${portal.memberId} portal: active`);
    expect((await store.get(portal.memberId))?.state).toBe('active');

    await store.update(portal.memberId, (await store.get(portal.memberId))!.version, { state: 'revoked', revokedReason: 'invalid_grant', revokedAt: Date.now() });
    b24.revoke(portal.memberId);
    const dead = await runBinary(['reactivate', portal.memberId, '--store', `file:${directory}`], env);
    expect(dead.code).toBe(1);
    expect(dead.stderr).toMatch(/revoked/);
    expect(dead.stdout + dead.stderr).not.toMatch(TOKEN);
    const unknown = await runBinary(['reactivate', 'f'.repeat(32), '--store', `file:${directory}`], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/not installed/);
  });
});

describe('forget and rekey', () => {
  it('forget needs --yes off a terminal, then deletes every chain of the portal', async () => {
    const filename = join(dir, 'forget.db');
    const store = new SqliteTokenStore({ filename });
    await store.upsert(recordInput(1));
    await store.upsert(recordInput(1, { chain: 'user:4', userId: 4 }));
    await store.upsert(recordInput(2));
    const id = recordInput(1).memberId;
    const refused = await runBinary(['forget', id, '--store', `sqlite:${filename}`]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--yes');
    expect(await store.get(id)).toBeDefined();
    const done = await runBinary(['forget', id, '--yes', '--store', `sqlite:${filename}`]);
    expect(done.code).toBe(0);
    expect(done.stdout).toContain(`${id}: 2 records deleted`);
    expect(await store.get(id)).toBeUndefined();
    expect(await store.get(recordInput(2).memberId)).toBeDefined();
    await store.close();
  });

  it('rekey moves every record to the write key; without keys it says to set B24PT_KEYS', async () => {
    const directory = join(dir, 'rekey');
    const k1 = Buffer.alloc(32, 1).toString('base64');
    const k2 = Buffer.alloc(32, 2).toString('base64');
    const inner = new FileTokenStore({ directory });
    await seedPortals(new EncryptedTokenStore(inner, { keys: { k1 }, writeKeyId: 'k1' }), 12, 4);
    const none = await runBinary(['rekey', '--store', `file:${directory}`]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('set B24PT_KEYS');
    const run = await runBinary(['rekey', '--store', `file:${directory}`, '--page-size', '5'], { B24PT_KEYS: `k2:${k2},k1:${k1}` });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('rekey with k2: 12 scanned, 12 re-encrypted, 0 already current');
    expect(run.stdout + run.stderr).not.toContain(k1);
    expect((await inner.get(recordInput(3).memberId))?.refreshToken).toMatch(/^v2\.k2\./);
    const wrong = await runBinary(['status', '--store', `file:${directory}`], { B24PT_KEYS: `k9:${k1}` });
    expect(wrong.stdout + wrong.stderr).not.toContain(k1);
    const onlyOld = await runBinary(['rekey', '--store', `file:${directory}`], { B24PT_KEYS: `k1:${k1}` });
    expect(onlyOld.code).toBe(1);
    expect(onlyOld.stdout).toContain('12 failed');
  });
});
