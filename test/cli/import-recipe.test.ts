// `import-recipe`: the b24jssdk install recipe's .oauth-store.json into a store; entries it cannot
// map are listed with the reason, never guessed; no token in any output.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapRecipeEntry } from '../../src/cli/import-recipe.js';
import { FileTokenStore } from '../../src/store/file/store.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { serviceAvailable, SERVICES } from '../support/services.js';
import { dropPostgresPrefix, runBinary, token, TOKEN } from './helpers.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { DIST_WAIT_MS, distReady } from '../support/dist.js';

beforeAll(distReady, DIST_WAIT_MS); // dist/ may still be building (test/global-setup.ts)

// Every chain is proven at the OAuth host before it is stored: the entries are the stand-in's.
let b24: FakeBitrix24;
const portals = new Map<number, string>();
function memberId(i: number): string {
  let id = portals.get(i);
  if (id === undefined) portals.set(i, (id = b24.addPortal().memberId));
  return id;
}
const secrets: string[] = [];
let env: Record<string, string>;

const postgres = await serviceAvailable('postgres');
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'b24pt-cli-recipe-'));
  b24 = await FakeBitrix24.start();
  env = { B24PT_CLIENT_ID: b24.clientId, B24PT_CLIENT_SECRET: b24.clientSecret, B24PT_OAUTH_HOSTS: b24.oauthUrl };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await b24.close();
});

/** One entry as the recipe's `toOAuthParams` + `saveCredentials` write it. */
function entry(i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const id = memberId(i);
  const portal = b24.portal(id)!;
  const chain = b24.issueChain(id);
  secrets.push(chain.accessToken, chain.refreshToken);
  return {
    applicationToken: portal.applicationToken,
    userId: 1,
    memberId: id,
    accessToken: chain.accessToken,
    refreshToken: chain.refreshToken,
    expires: chain.expires,
    expiresIn: chain.expiresIn,
    scope: portal.scope,
    domain: portal.domain,
    clientEndpoint: portal.clientEndpoint,
    serverEndpoint: b24.serverEndpoint,
    status: 'L',
    ...extra,
  };
}

function recipe(): Record<string, unknown> {
  const file: Record<string, unknown> = {};
  for (let i = 1; i <= 3; i++) file[memberId(i)] = entry(i);
  const { refreshToken: _dropped, ...noRefresh } = entry(4);
  file[memberId(4)] = noRefresh;
  file[memberId(5)] = entry(5, { clientEndpoint: 'ftp://p5.bitrix24.com/rest/' });
  file[memberId(6)] = entry(6, { memberId: memberId(7) });
  file[memberId(8)] = entry(8, { expires: Date.now() });
  file[memberId(9)] = 'not an object';
  return file;
}

describe('import-recipe', () => {
  it('maps what the recipe writes and refuses what it cannot map', () => {
    const now = Date.now();
    const mapped = mapRecipeEntry(memberId(1), entry(1), now);
    expect(mapped).toMatchObject({ memberId: memberId(1), chain: 'portal', state: 'active', userId: 1 });
    if (typeof mapped === 'string') throw new Error(mapped);
    expect(mapped.chainUpdatedAt).toBe((mapped.expires - 3600) * 1000);
    expect(mapRecipeEntry(memberId(2), entry(2, { refreshToken: '' }), now)).toBe('missing refresh token');
    expect(mapRecipeEntry(memberId(2), entry(2, { serverEndpoint: 'oauth.bitrix.info' }), now)).toMatch(/serverEndpoint/);
    expect(mapRecipeEntry(memberId(2), entry(2, { domain: 'a/b' }), now)).toMatch(/domain/);
    expect(mapRecipeEntry(memberId(2), entry(2, { expires: '123' }), now)).toMatch(/expires/);
  });

  it('imports into a file store, lists the rejects with reasons, and leaves stored portals alone', async () => {
    const file = join(dir, '.oauth-store.json');
    await writeFile(file, JSON.stringify(recipe(), null, 2), { mode: 0o600 });
    const target = join(dir, 'tokens');
    const first = await runBinary(['import-recipe', file, '--to', `file:${target}`], env);
    expect(first.code).toBe(1);
    expect(first.stdout).toContain('8 entries: imported 3, already in the store 0, not imported 5');
    expect(first.stdout).toContain(`rejected ${memberId(4)}: missing refresh token`);
    expect(first.stdout).toContain(`rejected ${memberId(5)}: clientEndpoint is not an http(s) URL`);
    expect(first.stdout).toContain(`rejected ${memberId(6)}: memberId differs`);
    expect(first.stdout).toContain(`rejected ${memberId(8)}: expires is not in unix seconds`);
    expect(first.stdout).toContain(`rejected ${memberId(9)}: not an object`);
    expect(first.stdout + first.stderr).not.toMatch(TOKEN);
    for (const secret of secrets) expect(first.stdout + first.stderr).not.toContain(secret);

    const store = new FileTokenStore({ directory: target });
    const stored = await store.get(memberId(2));
    expect(stored).toMatchObject({ domain: b24.portal(memberId(2))!.domain, version: 1, state: 'active' });
    const again = await runBinary(['import-recipe', file, '--to', `file:${target}`], env);
    expect(again.stdout).toContain('imported 0, already in the store 3');
    expect((await store.get(memberId(2)))?.version).toBe(1);
  });

  it('imports into PostgreSQL; a dry run writes nothing; bad files exit with advice', async () => {
    const file = join(dir, 'good.json');
    await writeFile(file, JSON.stringify({ [memberId(11)]: entry(11), [memberId(12)]: entry(12) }));
    if (postgres) {
      const prefix = `cli_imp_${process.pid}`;
      const url = `${SERVICES.postgres.url}?tablePrefix=${prefix}`;
      try {
        const dry = await runBinary(['import-recipe', file, '--to', url, '--dry-run']);
        expect(dry.stdout).toContain('would import 2');
        const done = await runBinary(['import-recipe', file, '--to', url], env);
        expect(done.code).toBe(0);
        const store = new PostgresTokenStore({ connectionString: SERVICES.postgres.url, tablePrefix: prefix });
        expect((await store.list()).records.map((r) => r.memberId)).toEqual([memberId(11), memberId(12)].sort());
        await store.close();
      } finally {
        await dropPostgresPrefix(SERVICES.postgres.url, prefix);
      }
    }
    const broken = join(dir, 'broken.json');
    await writeFile(broken, `{"${memberId(1)}": {"refreshToken": "${token()}"`);
    const bad = await runBinary(['import-recipe', broken, '--to', `file:${join(dir, 'x')}`], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('is not valid JSON');
    expect(bad.stderr).not.toMatch(TOKEN);
    const missing = await runBinary(['import-recipe', join(dir, 'nope.json'), '--to', `file:${join(dir, 'x')}`], env);
    const noCredentials = await runBinary(['import-recipe', join(dir, 'good.json'), '--to', `file:${join(dir, 'x')}`]);
    expect(noCredentials.code).toBe(2);
    expect(noCredentials.stderr).toContain('B24PT_CLIENT_ID');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('ENOENT');
  });
});
