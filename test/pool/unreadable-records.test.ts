// Issue 20 case 6: one record the encrypted store cannot open made `list()` throw for its whole page:
// pool.sweep() and the CLI's sweep, status and migrate aborted, and every other idle portal's chain
// went on lapsing. A record that cannot be opened is skipped, reported with its portal's id, and the
// walk carries on. Real encrypted store over the real file store.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { EncryptedTokenStore } from '../../src/store/encrypted/store.js';
import { FileTokenStore } from '../../src/store/file/store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { memoryIo } from '../cli/helpers.js';
import { DIST_WAIT_MS, distReady } from '../support/dist.js';

beforeAll(distReady, DIST_WAIT_MS); // dist/ may still be building (test/global-setup.ts)

const KEY = Buffer.alloc(32, 9).toString('base64');
let b24: FakeBitrix24;
let dir: string;
let inner: FileTokenStore;
let store: EncryptedTokenStore;
let broken: string;
let healthy: string[];

beforeAll(async () => {
  b24 = await FakeBitrix24.start();
  dir = await mkdtemp(join(tmpdir(), 'b24pt-unreadable-'));
  inner = new FileTokenStore({ directory: join(dir, 'tokens') });
  store = new EncryptedTokenStore(inner, { keys: { k1: KEY }, writeKeyId: 'k1' });
  const idleSince = Date.now() - 30 * 86_400_000;
  const ids = Array.from({ length: 5 }, () => b24.addPortal({ users: [7] }).memberId).sort();
  for (const id of ids) {
    await seedStore(store, b24, id, { record: { chainUpdatedAt: idleSince, updatedAt: idleSince } });
    await seedStore(store, b24, id, { userId: 7, record: { chainUpdatedAt: idleSince, updatedAt: idleSince } });
  }
  // The second portal's chain: one flipped character in its sealed refresh token.
  broken = ids[1]!;
  healthy = ids.filter((id) => id !== broken);
  const raw = (await inner.get(broken))!;
  const flipped = raw.refreshToken.slice(0, -3) + (raw.refreshToken.at(-3) === 'A' ? 'B' : 'A') + raw.refreshToken.slice(-2);
  expect((await inner.update(broken, raw.version, { refreshToken: flipped })).ok).toBe(true);
});
afterAll(async () => {
  await b24.close();
  await rm(dir, { recursive: true, force: true });
});

describe('one record that cannot be opened stops nobody (issue 20 case 6)', () => {
  it('the encrypted store lists the page without it and names it among the unreadable', async () => {
    const page = await store.list!({ limit: 100 });
    expect(page.records.map((r) => r.memberId)).toStrictEqual(healthy);
    expect(page.unreadable?.map((u) => [u.memberId, u.chain, u.error.code])).toStrictEqual([[broken, 'portal', 'DECRYPTION_FAILED']]);
  });

  it('pool.sweep() refreshes every other idle chain and reports the one it skipped', async () => {
    b24.resetStats();
    const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger });
    const result = await pool.sweep({ idleDays: 20, userChains: true });
    await pool.close();
    expect(result.refreshed).toBe(9); // 4 portal chains + 5 user chains
    expect(result.unreadable).toStrictEqual([{ memberId: broken, chain: 'portal', code: 'DECRYPTION_FAILED' }]);
    expect(b24.stats.refreshRequests).toBe(9);
  });

  it('the CLI\u2019s status, sweep and migrate go on past it, name it, and exit 1', async () => {
    const env = { B24PT_KEYS: `k1:${KEY}`, B24PT_CLIENT_ID: b24.clientId, B24PT_CLIENT_SECRET: b24.clientSecret, B24PT_OAUTH_HOSTS: b24.oauthUrl };
    const status = memoryIo(env);
    expect(await runCli(['status', '--store', `file:${join(dir, 'tokens')}`], status)).toBe(1);
    for (const id of healthy) expect(status.stdout).toContain(id);
    expect(status.stdout + status.stderr).toMatch(new RegExp(`unreadable\\s+${broken} portal: DECRYPTION_FAILED`));

    const sweep = memoryIo(env);
    expect(await runCli(['sweep', '--store', `file:${join(dir, 'tokens')}`, '--idle-days', '0', '--user-chains'], sweep)).toBe(1);
    expect(sweep.stdout).toMatch(/9 chains checked/);
    expect(sweep.stdout).toMatch(new RegExp(`unreadable\\s+${broken} portal: DECRYPTION_FAILED`));

    const migrate = memoryIo(env);
    expect(await runCli(['migrate', '--from', `file:${join(dir, 'tokens')}`, '--to', `file:${join(dir, 'copy')}`], migrate)).toBe(1);
    expect(migrate.stdout).toMatch(new RegExp(`unreadable\\s+${broken} portal: DECRYPTION_FAILED`));
    const copy = new EncryptedTokenStore(new FileTokenStore({ directory: join(dir, 'copy') }), { keys: { k1: KEY }, writeKeyId: 'k1' });
    for (const id of healthy) expect((await copy.get(id))?.memberId).toBe(id);
    expect(await copy.get(broken)).toBeUndefined();
  });
});
