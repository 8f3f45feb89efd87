// MemoryTokenStore: the conformance suite, plus lease expiry on an injected clock and argument checks.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { PortalRecordInput } from '../../src/store/token-store.js';
import { describeTokenStore } from '../../src/testing/conformance.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';

await describeTokenStore('MemoryTokenStore', { create: () => new MemoryTokenStore() });

describe('MemoryTokenStore on an injected clock', () => {
  it('takes over a lease exactly when the clock passes its expiry, without waiting', async () => {
    let now = 1_000_000;
    const store = new MemoryTokenStore({ now: () => now });
    const first = await store.tryLock('member', 5_000);
    expect(first?.expiresAt).toBe(1_005_000);
    now = 1_004_999;
    expect(await store.tryLock('member', 5_000)).toBeUndefined();
    now = 1_005_000;
    const second = await store.tryLock('member', 5_000);
    expect(second?.expiresAt).toBe(1_010_000);
    await first?.release();
    expect(await store.tryLock('member', 5_000)).toBeUndefined();
  });

  it('does not share records between instances', async () => {
    const one = new MemoryTokenStore();
    await one.upsert(sampleRecord('member'));
    expect(await new MemoryTokenStore().get('member')).toBeUndefined();
  });
});

describe('MemoryTokenStore argument checks', () => {
  it('rejects bad arguments with a TypeError naming the field and changes nothing', async () => {
    const store = new MemoryTokenStore();
    const stored = await store.upsert(sampleRecord('member'));
    const bad = { ...sampleRecord('member'), expires: '3600' } as unknown as PortalRecordInput;
    await expect(store.upsert(bad)).rejects.toThrow(new TypeError('record.expires must be a finite number'));
    await expect(store.upsert({ ...sampleRecord(''), memberId: '' })).rejects.toThrow(/record\.memberId/);
    await expect(store.update('member', 1, { version: 9 } as never)).rejects.toThrow(/patch\.version cannot be changed/);
    await expect(store.update('member', 1, { acessToken: 'typo' } as never)).rejects.toThrow(/patch\.acessToken is not/);
    await expect(store.update('member', 1, { userId: 1.5 })).rejects.toThrow(/patch\.userId/);
    await expect(store.update('member', -1, {})).rejects.toThrow(/expectedVersion/);
    await expect(store.tryLock('member', 0)).rejects.toThrow(/ttlMs/);
    await expect(store.list({ limit: 0 })).rejects.toThrow(/options\.limit/);
    await expect(store.get('')).rejects.toBeInstanceOf(TypeError);
    expect(await store.get('member')).toStrictEqual(stored);
  });

  it('never puts a token value into an argument error', async () => {
    const store = new MemoryTokenStore();
    const secret = 'secret-refresh-token-value';
    const bad = { ...sampleRecord('member'), refreshToken: secret, expires: Number.NaN };
    const error: unknown = await store.upsert(bad).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TypeError);
    expect(String(error)).not.toContain(secret);
  });

  it('drops unknown properties of an upserted record', async () => {
    const store = new MemoryTokenStore();
    const withExtra = { ...sampleRecord('member'), password: 'x' } as PortalRecordInput;
    expect(Object.keys(await store.upsert(withExtra))).not.toContain('password');
  });
});

describe('MemoryTokenStore properties', () => {
  const recordArbitrary = fc.record({
    memberId: fc.string({ minLength: 1, maxLength: 40 }),
    domain: fc.string(),
    clientEndpoint: fc.string(),
    serverEndpoint: fc.string(),
    accessToken: fc.string(),
    refreshToken: fc.string(),
    expires: fc.integer({ min: 0, max: 2 ** 40 }),
    scope: fc.string({ maxLength: 300 }),
    status: fc.string({ maxLength: 2 }),
    userId: fc.option(fc.maxSafeNat(), { nil: null }),
    applicationToken: fc.option(fc.string(), { nil: null }),
    state: fc.constantFrom('active' as const, 'revoked' as const),
    revokedReason: fc.option(fc.string(), { nil: null }),
    installedAt: fc.maxSafeNat(),
    updatedAt: fc.maxSafeNat(),
    chainUpdatedAt: fc.maxSafeNat(),
    revokedAt: fc.option(fc.maxSafeNat(), { nil: null }),
  });

  it('any valid record round-trips unchanged, and a following update changes only its patch', async () => {
    await fc.assert(
      fc.asyncProperty(recordArbitrary, fc.string(), async (input, accessToken) => {
        const store = new MemoryTokenStore();
        const stored = { ...input, chain: 'portal', eventTs: null, version: 1 };
        expect(await store.upsert(input)).toStrictEqual(stored);
        expect(await store.get(input.memberId)).toStrictEqual(stored);
        const result = await store.update(input.memberId, 1, { accessToken });
        expect(result).toStrictEqual({ ok: true, record: { ...stored, accessToken, version: 2 } });
      }),
      { numRuns: 200 },
    );
  });
});
