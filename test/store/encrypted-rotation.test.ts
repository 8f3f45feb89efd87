// EncryptedTokenStore over time: key rotation (old keys read, the write key writes, rekey converts
// every record, then the old key can go), plaintext records from before encryption, a rekey racing
// a concurrent write, and a pool over a store with a wrong key (a DecryptionError, never a revocation).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DecryptionError, findPortalTokensError } from '../../src/errors.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { EncryptedTokenStore } from '../../src/store/encrypted/store.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { ChainKey, PortalRecord, PortalRecordPatch, TokenStore } from '../../src/store/token-store.js';
import { chainRecord, sampleRecord } from '../../src/testing/conformance/records.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { recordingLogger } from '../pool/helpers.js';
import { expectNoneInClear, KEY1, KEY2, secretTokens } from './fixtures/encryption.js';

const keyIdOf = (value: string): string | undefined => (/^v[12]\./.test(value) ? value.split('.')[1] : undefined);

async function rawKeyIds(inner: MemoryTokenStore): Promise<Record<string, (string | undefined)[]>> {
  const out: Record<string, (string | undefined)[]> = {};
  const records: PortalRecord[] = [];
  for (const record of (await inner.list({ limit: 1000 })).records) records.push(record, ...(await inner.listChains(record.memberId)));
  for (const r of records) {
    out[`${r.memberId}/${r.chain}`] = [r.accessToken, r.refreshToken, r.applicationToken ?? ''].map((value) => (value === '' ? '-' : keyIdOf(value)));
  }
  return out;
}

describe('key rotation', () => {
  let inner: MemoryTokenStore;
  beforeEach(() => {
    inner = new MemoryTokenStore();
  });

  it('reads with old keys, writes with the new one, rekeys everything, then works without the old key', async () => {
    const before = new EncryptedTokenStore(inner, { keys: { k1: KEY1 }, writeKeyId: 'k1' });
    const tokens = { a: secretTokens('a'), b: secretTokens('b'), u: secretTokens('u') };
    await before.upsert(sampleRecord('a', tokens.a));
    await before.upsert(sampleRecord('b', tokens.b));
    await before.upsert(chainRecord('a', 7, tokens.u));
    expect(await rawKeyIds(inner)).toStrictEqual({ 'a/portal': ['k1', 'k1', 'k1'], 'a/user:7': ['k1', 'k1', 'k1'], 'b/portal': ['k1', 'k1', 'k1'] });

    const rotated = new EncryptedTokenStore(inner, { keys: { k1: KEY1, k2: KEY2 }, writeKeyId: 'k2' });
    expect((await rotated.get('b'))?.refreshToken, 'the old key still reads').toBe(tokens.b.refreshToken);
    await rotated.update('a', 1, { accessToken: 'fresh-access', refreshToken: 'fresh-refresh' });
    await rotated.update('b', 1, { scope: 'crm' });
    expect(await rawKeyIds(inner), 'a write carrying tokens seals them with the new key; others keep theirs').toStrictEqual({
      'a/portal': ['k2', 'k2', 'k1'],
      'a/user:7': ['k1', 'k1', 'k1'],
      'b/portal': ['k1', 'k1', 'k1'],
    });

    const result = await rotated.rekey({ pageSize: 1 });
    expect(result).toStrictEqual({ scanned: 3, rekeyed: 3, current: 0, conflicts: 0, vanished: 0, failed: [] });
    expect(await rawKeyIds(inner)).toStrictEqual({ 'a/portal': ['k2', 'k2', 'k2'], 'a/user:7': ['k2', 'k2', 'k2'], 'b/portal': ['k2', 'k2', 'k2'] });
    expect(await rotated.rekey(), 'a second run finds nothing to do').toMatchObject({ scanned: 3, rekeyed: 0, current: 3 });

    const after = new EncryptedTokenStore(inner, { keys: { k2: KEY2 }, writeKeyId: 'k2' });
    expect(await after.get('a')).toMatchObject({ accessToken: 'fresh-access', refreshToken: 'fresh-refresh', applicationToken: tokens.a.applicationToken, version: 3 });
    expect(await after.get({ memberId: 'a', chain: 'user:7' })).toMatchObject(tokens.u);
    expect(await after.get('b')).toMatchObject({ ...tokens.b, scope: 'crm', version: 3 });
    await expect(before.get('a'), 'the retired key alone no longer reads').rejects.toMatchObject({ reason: 'unknown-key', keyId: 'k2' });
  });

  it('reports records it cannot decrypt and leaves them as they are', async () => {
    await new EncryptedTokenStore(inner, { keys: { k0: KEY2 }, writeKeyId: 'k0' }).upsert(sampleRecord('lost'));
    await new EncryptedTokenStore(inner, { keys: { k1: KEY1 }, writeKeyId: 'k1' }).upsert(sampleRecord('kept'));
    const rawBefore = await inner.get('lost');
    const store = new EncryptedTokenStore(inner, { keys: { k1: KEY1, k2: KEY2 }, writeKeyId: 'k2' });
    const result = await store.rekey();
    expect(result).toStrictEqual({
      scanned: 2,
      rekeyed: 1,
      current: 0,
      conflicts: 0,
      vanished: 0,
      failed: [{ memberId: 'lost', chain: 'portal', keyId: 'k0', reason: 'unknown-key' }],
    });
    expect(await inner.get('lost')).toStrictEqual(rawBefore);
  });

  it('never overwrites a write that lands while rekey works on the record', async () => {
    const old = new EncryptedTokenStore(inner, { keys: { k1: KEY1 }, writeKeyId: 'k1' });
    await old.upsert(sampleRecord('member', secretTokens('old')));
    const racing = new EncryptedTokenStore(inner, { keys: { k1: KEY1, k2: KEY2 }, writeKeyId: 'k2' });
    // An inner store whose first conditional write is preceded by another worker's refresh.
    let raced = false;
    const racy: TokenStore = {
      capabilities: inner.capabilities,
      get: (key) => inner.get(key),
      upsert: (record) => inner.upsert(record),
      delete: (key) => inner.delete(key),
      deletePortal: (memberId) => inner.deletePortal(memberId),
      list: (options) => inner.list(options),
      listChains: (memberId) => inner.listChains(memberId),
      update: async (key: ChainKey, expected: number, patch: PortalRecordPatch) => {
        if (!raced) {
          raced = true;
          await racing.update(key, expected, { accessToken: 'refreshed-access', refreshToken: 'refreshed-refresh' });
        }
        return inner.update(key, expected, patch);
      },
    };
    const store = new EncryptedTokenStore(racy, { keys: { k1: KEY1, k2: KEY2 }, writeKeyId: 'k2' });
    // The refresh re-sealed its pair with k2; the application token (still k1) is re-sealed on a retry.
    expect(await store.rekey()).toMatchObject({ scanned: 1, rekeyed: 1, current: 0, conflicts: 0 });
    expect(raced, 'the race happened').toBe(true);
    expect(await racing.get('member'), "the other worker's pair is kept").toMatchObject({
      accessToken: 'refreshed-access',
      refreshToken: 'refreshed-refresh',
      applicationToken: secretTokens('old').applicationToken,
      version: 3,
    });
    expect(await rawKeyIds(inner)).toStrictEqual({ 'member/portal': ['k2', 'k2', 'k2'] });
  });
});

describe('plaintext records written before encryption was turned on', () => {
  it('are read as they are, logged once without a value, sealed on the next write and by rekey', async () => {
    const inner = new MemoryTokenStore();
    const tokens = secretTokens('plain');
    await inner.upsert(sampleRecord('a', tokens));
    await inner.upsert(sampleRecord('b', tokens));
    const logger = recordingLogger();
    const store = new EncryptedTokenStore(inner, { keys: { k1: KEY1 }, writeKeyId: 'k1', logger });
    expect(await store.get('a')).toMatchObject(tokens);
    expect(await store.get('b')).toMatchObject(tokens);
    expect(logger.lines, 'one warning per store').toHaveLength(1);
    expect(logger.lines[0]).toMatch(/plaintext/);
    expectNoneInClear(logger.lines.join('\n'), Object.values(tokens), 'the log');
    await store.update('a', 1, { accessToken: tokens.accessToken });
    expect(keyIdOf((await inner.get('a'))?.accessToken ?? ''), 'sealed by the next write').toBe('k1');
    expect(await store.rekey()).toMatchObject({ scanned: 2, rekeyed: 2 });
    const raw = JSON.stringify([await inner.get('a'), await inner.get('b')]);
    expectNoneInClear(raw, Object.values(tokens), 'the store after rekey');
  });

  it('are refused with allowPlaintext: false', async () => {
    const inner = new MemoryTokenStore();
    await inner.upsert(sampleRecord('a', secretTokens('plain')));
    const strict = new EncryptedTokenStore(inner, { keys: { k1: KEY1 }, writeKeyId: 'k1', allowPlaintext: false });
    await expect(strict.get('a')).rejects.toMatchObject({ name: 'DecryptionError', reason: 'plaintext-refused', keyId: undefined });
    expect(await strict.rekey(), 'rekey still converts them').toMatchObject({ rekeyed: 1, failed: [] });
    expect(await strict.get('a')).toMatchObject(secretTokens('plain'));
  });
});

describe('a pool over a store with the wrong key', () => {
  let b24: FakeBitrix24;
  beforeAll(async () => {
    b24 = await FakeBitrix24.start();
  });
  afterAll(async () => {
    await b24.close();
  });

  it('throws DecryptionError from clientFor and never revokes or changes the record', async () => {
    const inner = new MemoryTokenStore();
    const portal = b24.addPortal();
    const right = new EncryptedTokenStore(inner, { keys: { k1: KEY1 }, writeKeyId: 'k1' });
    await seedStore(right, b24, portal.memberId, { expired: true });
    const rawBefore = await inner.get(portal.memberId);
    const logger = recordingLogger();
    const wrong = new EncryptedTokenStore(inner, { keys: { k1: KEY2 }, writeKeyId: 'k1', logger });
    const pool = new PortalClientPool({ ...b24.trust, store: wrong, clientId: b24.clientId, clientSecret: b24.clientSecret, logger });
    try {
      const error = await pool.clientFor(portal.memberId).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(findPortalTokensError(error)).toBeInstanceOf(DecryptionError);
      expect(error).toMatchObject({ code: 'DECRYPTION_FAILED', memberId: portal.memberId, keyId: 'k1' });
      await expect(pool.clientFor(portal.memberId), 'asked again: still the same error').rejects.toBeInstanceOf(DecryptionError);
      expect(await inner.get(portal.memberId), 'the stored record is unchanged').toStrictEqual(rawBefore);
      expect(rawBefore?.state).toBe('active');
      expect(b24.stats.refreshRequests, 'nothing was sent to the OAuth host').toBe(0);
      expect(pool.stats().revocations, 'no revocation').toBe(0);
      const good = new PortalClientPool({ ...b24.trust, store: right, clientId: b24.clientId, clientSecret: b24.clientSecret, logger });
      const client = await good.clientFor(portal.memberId);
      expect(client, 'the right key still serves the portal').toBeDefined();
      await good.close();
    } finally {
      await pool.close();
    }
  });
});
