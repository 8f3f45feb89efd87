// Issue 20 case 3: the store could send secrets to a stranger. Someone who can write the database
// (but holds no key) re-points a record's serverEndpoint or clientEndpoint; the next refresh posted
// the refresh token with the client id and secret there, the next call sent the access token.
// Rule: a request that carries a secret goes only to a host the configuration trusts, checked at
// the moment of sending; and the encrypted store binds every field that decides where secrets go.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DecryptionError, findPortalTokensError, UntrustedHostError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { EncryptedTokenStore } from '../../src/store/encrypted/store.js';
import { sealFields } from '../../src/store/encrypted/sealed-fields.js';
import { TokenCipher } from '../../src/store/encrypted/token-cipher.js';
import { FileTokenStore } from '../../src/store/file/store.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { PortalRecordPatch, TokenStore } from '../../src/store/token-store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let b24: FakeBitrix24;
let attacker: Server;
let attackerUrl: string;
let received = 0;
let dir: string;

beforeAll(async () => {
  b24 = await FakeBitrix24.start();
  attacker = createServer((req, res) => {
    received++;
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"result":{}}');
  });
  await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
  attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
  dir = await mkdtemp(join(tmpdir(), 'b24pt-untrusted-'));
});
afterAll(async () => {
  attacker.close();
  await b24.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  received = 0;
});

const KEYS = { keys: { k1: Buffer.alloc(32, 7) }, writeKeyId: 'k1' };

function pool(store: TokenStore, extra: Record<string, unknown> = {}): PortalClientPool {
  return new PortalClientPool({ store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, ...b24.trust, ...extra });
}

async function call(p: PortalClientPool, memberId: string): Promise<unknown> {
  try {
    await (await p.clientFor(memberId)).actions.v2.call.make({ method: 'profile' });
    return undefined;
  } catch (error) {
    return error;
  }
}

/** Re-points a stored record through the store below any wrapper (as a database writer would). */
async function repoint(raw: TokenStore, memberId: string, patch: PortalRecordPatch): Promise<void> {
  const stored = await raw.get(memberId);
  const result = await raw.update(memberId, stored!.version, patch);
  expect(result.ok).toBe(true);
}

describe('a re-pointed record sends no secret to a stranger (issue 20 case 3)', () => {
  it('serverEndpoint re-pointed in a plain store: the refresh is refused before sending, typed, chain untouched', async () => {
    const store = new MemoryTokenStore();
    const portal = b24.addPortal();
    await seedStore(store, b24, portal.memberId, { expired: true });
    await repoint(store, portal.memberId, { serverEndpoint: `${attackerUrl}/rest/` });
    const p = pool(store);
    const failure = await call(p, portal.memberId);
    expect(findPortalTokensError(failure)).toBeInstanceOf(UntrustedHostError);
    expect(received).toBe(0);
    expect((await store.get(portal.memberId))?.state).toBe('active');
    await p.close();
  });

  it('clientEndpoint re-pointed in a plain store: the REST call is refused before sending, typed', async () => {
    const store = new MemoryTokenStore();
    const portal = b24.addPortal();
    await seedStore(store, b24, portal.memberId);
    await repoint(store, portal.memberId, { clientEndpoint: `${attackerUrl}/rest/` });
    const p = pool(store);
    expect(findPortalTokensError(await call(p, portal.memberId))).toBeInstanceOf(UntrustedHostError);
    expect(received).toBe(0);
    await p.close();
  });

  it('the default REST-root rule: https, the portal\u2019s own domain, no loopback or private address', async () => {
    const store = new MemoryTokenStore();
    const portal = b24.addPortal();
    await seedStore(store, b24, portal.memberId);
    // The stand-in's own REST root is on 127.0.0.1 over http: refused unless the configuration opts in.
    const p = pool(store, { restRoots: undefined });
    expect(findPortalTokensError(await call(p, portal.memberId))).toBeInstanceOf(UntrustedHostError);
    await p.close();
  });

  for (const field of ['serverEndpoint', 'clientEndpoint', 'domain'] as const) {
    it(`encrypted store over the file store: ${field} re-pointed below it fails to open (DecryptionError), nothing sent`, async () => {
      const inner = new FileTokenStore({ directory: join(dir, field) });
      const store = new EncryptedTokenStore(inner, KEYS);
      const portal = b24.addPortal();
      await seedStore(store, b24, portal.memberId, { expired: field === 'serverEndpoint' });
      await repoint(inner, portal.memberId, { [field]: field === 'domain' ? '127.0.0.1' : `${attackerUrl}/rest/` });
      await expect(store.get(portal.memberId)).rejects.toBeInstanceOf(DecryptionError);
      // Even a configuration that trusted the attacker's host sends nothing: the record does not open.
      const p = pool(store, { trustedOAuthHosts: [b24.oauthUrl, attackerUrl], restRoots: { allowHttp: true, allowPrivateAddresses: true, allowHost: () => true } });
      expect(findPortalTokensError(await call(p, portal.memberId))).toBeInstanceOf(DecryptionError);
      expect(received).toBe(0);
      await p.close();
    });
  }

  it('the encrypted store still opens its own writes, a move (domain and REST root changed by the store) included', async () => {
    const store = new EncryptedTokenStore(new MemoryTokenStore(), KEYS);
    const portal = b24.addPortal();
    const { record } = await seedStore(store, b24, portal.memberId);
    const moved = await store.update(portal.memberId, record.version, { domain: 'renamed.bitrix24.com', clientEndpoint: 'https://renamed.bitrix24.com/rest/' });
    expect(moved.ok).toBe(true);
    const read = await store.get(portal.memberId);
    expect(read?.accessToken).toBe(record.accessToken);
    expect(read?.domain).toBe('renamed.bitrix24.com');
    const refreshed = await store.update(portal.memberId, read!.version, { accessToken: 'a'.repeat(64), refreshToken: 'b'.repeat(64) });
    expect(refreshed.ok).toBe(true);
    expect((await store.get(portal.memberId))?.refreshToken).toBe('b'.repeat(64));
  });

  it('records sealed by the previous format (v1, no destination bound) still open, and move to v2 on their next write and by rekey', async () => {
    const inner = new MemoryTokenStore();
    const store = new EncryptedTokenStore(inner, KEYS);
    const portal = b24.addPortal();
    const { record } = await seedStore(new MemoryTokenStore(), b24, portal.memberId);
    const cipher = new TokenCipher(KEYS);
    // What the previous release wrote: the same envelope, bound to memberId, chain and field only.
    await inner.upsert(sealFields(cipher, record.memberId, 'portal', { ...record }));
    await inner.upsert(sealFields(cipher, record.memberId, 'user:5', { ...record, chain: 'user:5' as const }));
    expect((await inner.get(portal.memberId))?.accessToken).toMatch(/^v1\.k1\./);
    const read = await store.get(portal.memberId);
    expect(read?.refreshToken).toBe(record.refreshToken);
    const written = await store.update(portal.memberId, read!.version, { accessToken: 'c'.repeat(64) });
    expect(written.ok).toBe(true);
    const raw = await inner.get(portal.memberId);
    expect(raw?.accessToken).toMatch(/^v2\.k1\./);
    expect(raw?.refreshToken, 'a write seals every token it carries; rekey does the rest').toMatch(/^v[12]\.k1\./);
    const result = await store.rekey();
    expect(result).toMatchObject({ scanned: 2, failed: [] });
    expect((await inner.get(portal.memberId))?.refreshToken).toMatch(/^v2\.k1\./);
    expect((await inner.get({ memberId: portal.memberId, chain: 'user:5' }))?.applicationToken ?? 'v2.').toMatch(/^v2\./);
    expect((await store.get(portal.memberId))?.refreshToken).toBe(record.refreshToken);
  });
});
