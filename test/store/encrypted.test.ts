// EncryptedTokenStore: the conformance suite around the memory store, a store with a change feed and
// the file store (cross-process cases in real child processes); raw files hold no token in clear;
// wrong, unknown, truncated, altered and moved values give a DecryptionError, never garbage.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DecryptionError, PortalTokensError } from '../../src/errors.js';
import { EncryptedTokenStore } from '../../src/store/encrypted/store.js';
import { FileTokenStore } from '../../src/store/file/store.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { PortalRecord, TokenStore } from '../../src/store/token-store.js';
import { describeTokenStore } from '../../src/testing/conformance.js';
import { chainRecord, sampleRecord } from '../../src/testing/conformance/records.js';
import { expectNoneInClear, KEY1, KEY2, secretTokens } from './fixtures/encryption.js';
import { FeedMemoryStore } from './fixtures/feed-store.js';
import { everything } from './fixtures/file-layout.js';
import { childModule } from '../support/children.js';

const encrypt = (inner: TokenStore, keys: Record<string, string> = { k1: KEY1 }, writeKeyId = 'k1'): EncryptedTokenStore =>
  new EncryptedTokenStore(inner, { keys, writeKeyId });

await describeTokenStore('EncryptedTokenStore(MemoryTokenStore)', { create: () => encrypt(new MemoryTokenStore()) });
await describeTokenStore('EncryptedTokenStore(store with a change feed)', { create: () => encrypt(new FeedMemoryStore()) });

async function freshFileStore(): Promise<EncryptedTokenStore> {
  const base = await mkdtemp(join(tmpdir(), 'b24pt-enc-file-'));
  return encrypt(new FileTokenStore({ directory: join(base, 'portals') }));
}
const directoryOf = (store: EncryptedTokenStore): string => (store.inner as FileTokenStore).directory;

await describeTokenStore('EncryptedTokenStore(FileTokenStore)', {
  create: freshFileStore,
  destroy: (store) => rm(join(directoryOf(store), '..'), { recursive: true, force: true }),
  crossProcess: {
    ...childModule(new URL('./fixtures/open-encrypted-file-store.ts', import.meta.url)),
    args: (store) => ({ directory: directoryOf(store), key: KEY1 }),
  },
  extraTests: (getStore) => {
    it('leaves no token in clear in any file, after upserts, token updates and user chains', async () => {
      const store = getStore();
      const first = secretTokens('one');
      const second = secretTokens('two');
      const user = secretTokens('user');
      await store.upsert(sampleRecord('member', first));
      await store.update('member', 1, { accessToken: second.accessToken, refreshToken: second.refreshToken });
      await store.upsert(chainRecord('member', 7, user));
      const names = await readdir(directoryOf(store));
      expect(names.length, 'the store wrote a directory per chain').toBeGreaterThanOrEqual(2);
      const raw = await everything(directoryOf(store));
      expectNoneInClear(raw, [...Object.values(first), ...Object.values(second), ...Object.values(user)], 'the file store');
      expect(raw, 'values are sealed with the write key').toMatch(/"v2\.k1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+"/);
      expect((await store.get('member'))?.accessToken, 'the store reads its own values').toBe(second.accessToken);
    });
  },
});

describe('EncryptedTokenStore sealing', () => {
  let inner: MemoryTokenStore;
  let store: EncryptedTokenStore;
  const tokens = secretTokens('seal');
  beforeEach(() => {
    inner = new MemoryTokenStore();
    store = encrypt(inner);
  });

  const raw = async (memberId = 'member', chain: PortalRecord['chain'] = 'portal'): Promise<PortalRecord> => {
    const record = await inner.get({ memberId, chain });
    if (record === undefined) throw new Error('no raw record');
    return record;
  };

  it('seals each token with a fresh IV, keeps empty strings and null as they are, and leaves other fields readable', async () => {
    await store.upsert(sampleRecord('member', { ...tokens, refreshToken: tokens.accessToken }));
    const stored = await raw();
    expect(stored.accessToken, 'sealed').toMatch(/^v2\.k1\./);
    expect(stored.accessToken, 'the same value sealed twice differs (fresh IV)').not.toBe(stored.refreshToken);
    expect(stored.domain, 'non-token fields are stored as given').toBe('acme.bitrix24.com');
    await store.upsert(sampleRecord('member', { accessToken: '', refreshToken: '', applicationToken: null }));
    const cleared = await raw();
    expect([cleared.accessToken, cleared.refreshToken, cleared.applicationToken]).toStrictEqual(['', '', null]);
    expect(await store.get('member')).toMatchObject({ accessToken: '', refreshToken: '', applicationToken: null });
  });

  it('refuses a value moved to another portal, another chain or another field', async () => {
    await store.upsert(sampleRecord('member', tokens));
    await store.upsert(sampleRecord('other'));
    await store.upsert(chainRecord('member', 7));
    const sealed = await raw();
    await inner.update('other', 1, { accessToken: sealed.accessToken });
    await expect(store.get('other'), 'another portal').rejects.toMatchObject({ name: 'DecryptionError', reason: 'authentication', memberId: 'other' });
    await inner.update({ memberId: 'member', chain: 'user:7' }, 1, { refreshToken: sealed.refreshToken });
    await expect(store.get({ memberId: 'member', chain: 'user:7' }), 'another chain').rejects.toMatchObject({ chain: 'user:7', field: 'refreshToken' });
    await inner.update('member', 1, { accessToken: sealed.refreshToken, refreshToken: sealed.accessToken });
    await expect(store.get('member'), 'swapped fields').rejects.toBeInstanceOf(DecryptionError);
  });

  it('refuses an altered, truncated or malformed value with a DecryptionError that names no value', async () => {
    await store.upsert(sampleRecord('member', tokens));
    const sealed = (await raw()).accessToken;
    const [version, keyId, iv, body] = sealed.split('.') as [string, string, string, string];
    const flipped = `${body.slice(0, 5)}${body[5] === 'A' ? 'B' : 'A'}${body.slice(6)}`;
    const cases: [string, string, string][] = [
      ['altered ciphertext', [version, keyId, iv, flipped].join('.'), 'authentication'],
      ['truncated ciphertext', [version, keyId, iv, body.slice(0, -4)].join('.'), 'authentication'],
      ['truncated below the tag', [version, keyId, iv, body.slice(0, 10)].join('.'), 'malformed'],
      ['altered IV', [version, keyId, `${iv.slice(0, -1)}${iv.endsWith('A') ? 'B' : 'A'}`, body].join('.'), 'authentication'],
      ['a missing part', [version, keyId, body].join('.'), 'malformed'],
      ['an unknown version', ['v3', keyId, iv, body].join('.'), 'malformed'],
      ['the previous format\u2019s version on a bound value', ['v1', keyId, iv, body].join('.'), 'authentication'],
    ];
    for (const [what, value, reason] of cases) {
      await store.upsert(sampleRecord('member', tokens));
      const version = (await raw()).version;
      await inner.update('member', version, { accessToken: value });
      const error = await store.get('member').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, what).toBeInstanceOf(DecryptionError);
      expect(error, what).toBeInstanceOf(PortalTokensError);
      expect(error, what).toMatchObject({ code: 'DECRYPTION_FAILED', reason, field: 'accessToken', memberId: 'member', keyId: 'k1' });
      const shown = `${String(error)} ${JSON.stringify(error)} ${inspect(error, { depth: 10 })}`;
      expectNoneInClear(shown, [...Object.values(tokens), value, body, KEY1], `the error for ${what}`);
    }
  });

  it('refuses a wrong key (same id) and an unknown key id', async () => {
    await store.upsert(sampleRecord('member', tokens));
    await expect(encrypt(inner, { k1: KEY2 }).get('member'), 'wrong key').rejects.toMatchObject({ reason: 'authentication', keyId: 'k1' });
    await expect(encrypt(inner, { k2: KEY2 }, 'k2').get('member'), 'unknown key id').rejects.toMatchObject({ reason: 'unknown-key', keyId: 'k1' });
    // A page names what it could not open instead of failing as a whole (issue 20 case 6).
    const page = await encrypt(inner, { k2: KEY2 }, 'k2').list?.();
    expect(page?.records, 'a list page leaves the record out').toStrictEqual([]);
    expect(page?.unreadable?.[0]?.error, 'and names it').toBeInstanceOf(DecryptionError);
  });

  it('decrypts the current record a conflict returns', async () => {
    await store.upsert(sampleRecord('member', tokens));
    await store.update('member', 1, { scope: 'crm' });
    const result = await store.update('member', 1, { accessToken: 'lost' });
    expect(result).toMatchObject({ ok: false, current: { accessToken: tokens.accessToken, version: 2 } });
  });

  it('validates keys and names the key id, never the key', () => {
    const short = Buffer.alloc(31, 7).toString('base64');
    const attempts: [Record<string, unknown>, string, RegExp][] = [
      [{ k1: Buffer.alloc(31) }, 'k1', /keys\.k1 must be exactly 32 bytes/],
      [{ k1: short }, 'k1', /keys\.k1 must be 32 bytes, or a base64/],
      [{ k1: `${KEY1}x` }, 'k1', /keys\.k1 must be 32 bytes, or a base64/],
      [{ k1: 42 }, 'k1', /keys\.k1 must be a Uint8Array/],
      [{ 'bad.id': KEY1 }, 'k1', /key id must be 1 to 32 characters/],
      [{ k1: KEY1 }, 'k9', /writeKeyId must name one of options\.keys/],
    ];
    for (const [keys, writeKeyId, message] of attempts) {
      let caught: unknown;
      try {
        new EncryptedTokenStore(inner, { keys: keys as Record<string, string>, writeKeyId });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(TypeError);
      expect(String(caught)).toMatch(message);
      expectNoneInClear(String(caught), [KEY1, short], 'a key error');
    }
    const raw = new Uint8Array(32).fill(9);
    const fromBytes = new EncryptedTokenStore(inner, { keys: { k1: raw, k2: Buffer.from(raw).toString('base64url') }, writeKeyId: 'k1' });
    expect(fromBytes.writeKeyId, 'bytes and base64url keys are accepted').toBe('k1');
  });

  it('shows no key material through inspect or JSON', () => {
    const keyBytes = Buffer.from(KEY1, 'base64');
    const shown = `${inspect(store, { depth: 10, showHidden: true })} ${JSON.stringify(store)}`;
    expectNoneInClear(shown, [KEY1, keyBytes.toString('hex'), keyBytes.toString('base64url')], 'the store');
  });
});

describe('EncryptedTokenStore passes the inner store through', () => {
  let dir: string;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('has exactly the optional methods and capabilities of the inner store', async () => {
    const bare: TokenStore = {
      capabilities: { lock: false, crossProcess: false, list: false },
      get: () => Promise.resolve(undefined),
      upsert: () => Promise.reject(new Error('unused')),
      update: () => Promise.reject(new Error('unused')),
      delete: () => Promise.resolve(false),
      deletePortal: () => Promise.resolve(0),
    };
    const wrapped = encrypt(bare);
    expect([wrapped.tryLock, wrapped.tryLockAndGet, wrapped.list, wrapped.listChains, wrapped.subscribe]).toStrictEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(wrapped.capabilities).toStrictEqual(bare.capabilities);
    await expect(wrapped.rekey(), 'rekey needs listing').rejects.toThrow(/capabilities\.list/);
    dir = await mkdtemp(join(tmpdir(), 'b24pt-enc-pass-'));
    const file = encrypt(new FileTokenStore({ directory: dir }));
    expect(typeof file.tryLock === 'function' && typeof file.list === 'function').toBe(true);
    const lease = await file.tryLock?.('member', 5_000);
    expect(await file.inner.tryLock?.('member', 5_000), "the inner store's lock is held").toBeUndefined();
    await lease?.release();
  });

  it("passes tryLockAndGet through with the record decrypted, and frees the lease when the record does not open", async () => {
    const inner = new MemoryTokenStore();
    const store = encrypt(inner);
    const stored = await store.upsert(sampleRecord('member'));
    const { lease, record } = (await store.tryLockAndGet?.('member', 5_000)) ?? {};
    expect(lease, 'the lease is taken').toBeDefined();
    expect(record, 'the record, decrypted').toStrictEqual(stored);
    expect((await inner.get('member'))?.accessToken, 'stored sealed').not.toBe(stored.accessToken);
    expect(await inner.tryLock('member', 5_000), "the inner store's lock is held").toBeUndefined();
    await lease?.release();
    // A record sealed under a key this store does not hold.
    await encrypt(inner, { k2: KEY2 }, 'k2').upsert(sampleRecord('member'));
    await expect(store.tryLockAndGet?.('member', 5_000)).rejects.toBeInstanceOf(DecryptionError);
    expect(await inner.tryLock('member', 5_000), 'the lease taken with the unreadable record was released').toBeDefined();
    expect(encrypt(new MemoryTokenStore({})).tryLockAndGet, 'present when the inner store has it').toBeTypeOf('function');
  });
});

describe('the package root', () => {
  it('exports the encrypted store, the spool and their errors', async () => {
    const root = await import('../../src/index.js');
    expect([root.EncryptedTokenStore, root.FileInstallSpool, root.DecryptionError, root.SpoolFullError].map((x) => typeof x)).toStrictEqual([
      'function',
      'function',
      'function',
      'function',
    ]);
    expect(new root.DecryptionError({ memberId: 'm', chain: 'portal', field: 'accessToken', keyId: 'k1', reason: 'authentication' })).toBeInstanceOf(
      root.PortalTokensError,
    );
    expect([root.ErrorCode.DecryptionFailed, root.ErrorCode.SpoolFull]).toStrictEqual(['DECRYPTION_FAILED', 'SPOOL_FULL']);
  });
});
