// Issue 22 case 6: every error a caller meets is one of the library's types with the right code.
// A custom store's raw error from tryLock or acquire arrives as StoreError (cause kept); a member id
// the stores cannot take is refused at clientFor's door as bad input, before the store is touched;
// caller-supplied text never reaches a message unescaped (a newline cannot forge a log line).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DecryptionError,
  ErrorCode,
  findPortalTokensError,
  InvalidArgumentError,
  LockTimeoutError,
  PortalNotInstalledError,
  PortalRevokedError,
  PortalSuspendedError,
  RateLimitedError,
  StoreError,
  UserChainMissingError,
} from '../../src/index.js';
import { LINE_BREAKING } from '../../src/errors/escape.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { BudgetGrant, BudgetSpec, ChainKey, LockedRead, PortalRecord, StoreLease } from '../../src/store/token-store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { recordingLogger } from '../pool/helpers.js';

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});

/** A custom store (a memory store underneath) whose lock and budget fail with raw errors, and which counts reads. */
class RawFailingStore extends MemoryTokenStore {
  failLock = false;
  failAcquire = false;
  gets = 0;
  override async get(key: ChainKey): Promise<PortalRecord | undefined> {
    this.gets++;
    return super.get(key);
  }
  override async tryLock(key: ChainKey, ttlMs: number): Promise<StoreLease | undefined> {
    if (this.failLock) throw new Error('lock table gone');
    return super.tryLock(key, ttlMs);
  }
  override async tryLockAndGet(key: ChainKey, ttlMs: number): Promise<LockedRead> {
    if (this.failLock) throw new Error('lock table gone');
    return super.tryLockAndGet(key, ttlMs);
  }
  override async acquire(key: string, spec: BudgetSpec): Promise<BudgetGrant> {
    if (this.failAcquire) throw new Error('budget table gone');
    return super.acquire(key, spec);
  }
}

function newPool(store: RawFailingStore): PortalClientPool {
  return new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: recordingLogger() });
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe("a custom store's raw error reaches the caller typed", () => {
  it('tryLock: a refresh that cannot take the lock fails with StoreError, the raw error as its cause', async () => {
    const store = new RawFailingStore();
    const portal = b24.addPortal();
    await seedStore(store, b24, portal.memberId, { expired: true });
    const pool = newPool(store);
    try {
      const client = await pool.clientFor(portal.memberId);
      b24.resetStats();
      store.failLock = true;
      const error = await caught(client.actions.v2.call.make({ method: 'profile' }));
      const typed = findPortalTokensError(error);
      expect(typed).toBeInstanceOf(StoreError);
      expect(typed?.code).toBe(ErrorCode.StoreFailure);
      expect(typed?.memberId).toBe(portal.memberId);
      expect((typed?.cause as Error | undefined)?.message).toBe('lock table gone');
      expect(b24.stats.refreshRequests).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it("acquire: a request whose budget step fails rejects with StoreError, the raw error as its cause, and nothing is sent", async () => {
    const store = new RawFailingStore();
    const portal = b24.addPortal();
    await seedStore(store, b24, portal.memberId);
    const pool = newPool(store);
    try {
      const client = await pool.clientFor(portal.memberId);
      b24.resetStats();
      store.failAcquire = true;
      const error = await caught(client.actions.v2.call.make({ method: 'profile' }));
      const typed = findPortalTokensError(error);
      expect(typed).toBeInstanceOf(StoreError);
      expect(typed?.code).toBe(ErrorCode.StoreFailure);
      expect(typed?.memberId).toBe(portal.memberId);
      expect((typed?.cause as Error | undefined)?.message).toBe('budget table gone');
      expect(b24.stats.restByMethod['profile'] ?? 0).toBe(0);
    } finally {
      await pool.close();
    }
  });
});

describe("clientFor refuses a member id no store can take, before the store is touched", () => {
  const bad: [string, unknown][] = [
    ['101 characters', 'a'.repeat(101)],
    ['a lone surrogate', 'abc\uD800def'],
    ['a newline', 'abc\ndef'],
    ['a NUL', 'abc\u0000'],
    ['empty', ''],
    ['not a string', 42],
  ];
  it.each(bad)('%s: InvalidArgumentError (INVALID_ARGUMENT), 0 store reads', async (_name, memberId) => {
    const store = new RawFailingStore();
    const pool = newPool(store);
    try {
      const error = await caught(pool.clientFor(memberId as string));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).code).toBe(ErrorCode.InvalidArgument);
      expect((error as InvalidArgumentError).argument).toBe('memberId');
      expect((error as Error).message).not.toMatch(LINE_BREAKING);
      expect(store.gets).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it.each([[0], [-1], [1.5], ['7']])('userId %j: InvalidArgumentError naming options.userId, 0 store reads', async (userId) => {
    const store = new RawFailingStore();
    const pool = newPool(store);
    try {
      const error = await caught(pool.clientFor('0123456789abcdef0123456789abcdef', { userId: userId as number }));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).argument).toBe('options.userId');
      expect(store.gets).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('100 characters is still asked of the store (PORTAL_NOT_INSTALLED)', async () => {
    const store = new RawFailingStore();
    const pool = newPool(store);
    try {
      const error = await caught(pool.clientFor('a'.repeat(100)));
      expect(error).toBeInstanceOf(PortalNotInstalledError);
      expect(store.gets).toBeGreaterThan(0);
    } finally {
      await pool.close();
    }
  });
});

describe('caller-supplied text is escaped in every message', () => {
  const forged = 'abc\n{"level":"info","message":"portal xyz installed"}\r\u2028\u001b[31m\uD800';
  const errors: [string, Error][] = [
    ['PortalNotInstalledError', new PortalNotInstalledError(forged)],
    ['PortalRevokedError', new PortalRevokedError(forged, 'invalid_grant\nforged')],
    ['PortalSuspendedError', new PortalSuspendedError(forged, 0)],
    ['UserChainMissingError', new UserChainMissingError(forged, 7)],
    ['LockTimeoutError', new LockTimeoutError(forged, 10)],
    ['RateLimitedError', new RateLimitedError(forged, 10, 'rate')],
    ['DecryptionError', new DecryptionError({ memberId: forged, chain: forged, field: 'accessToken', keyId: forged, reason: 'authentication' })],
    ['InvalidArgumentError', new InvalidArgumentError('memberId', forged)],
  ];
  it.each(errors)('%s: no control character, line separator or lone surrogate in its message', (_name, error) => {
    expect(error.message).not.toMatch(LINE_BREAKING);
    expect(error.message.isWellFormed()).toBe(true);
    expect(error.message).toContain('abc\\n{');
  });

  it("a PortalNotInstalledError from clientFor keeps the raw id in memberId and an escaped one in its message", async () => {
    const store = new RawFailingStore();
    const pool = newPool(store);
    try {
      const id = 'abc\\tdef';
      const error = (await caught(pool.clientFor(id))) as PortalNotInstalledError;
      expect(error).toBeInstanceOf(PortalNotInstalledError);
      expect(error.memberId).toBe(id);
      expect(error.message).toBe('Portal abc\\\\tdef is not installed');
    } finally {
      await pool.close();
    }
  });
});
