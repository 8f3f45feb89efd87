// MemoryTokenStore: the TokenStore contract held in a Map, for tests and single-process apps.
// Each method's read-compare-write runs without an `await` in between, which is what makes it atomic.

/* eslint-disable @typescript-eslint/require-await -- the methods are async so that a bad argument
   rejects like an I/O failure would, and they must not await: that is what keeps them atomic. */

import { randomUUID } from 'node:crypto';
import {
  applyPatch,
  checkExpectedVersion,
  checkListOptions,
  checkMemberId,
  checkPatch,
  checkRecordInput,
  checkTtlMs,
  nextVersion,
} from './record-checks.js';
import type {
  ConditionalWriteResult,
  PortalListOptions,
  PortalListPage,
  PortalRecord,
  PortalRecordInput,
  PortalRecordPatch,
  StoreCapabilities,
  StoreLease,
  TokenStore,
} from './token-store.js';

/** Options of {@link MemoryTokenStore}. */
export interface MemoryTokenStoreOptions {
  /**
   * The clock that lock leases are measured against, in unix milliseconds. Inject one to test
   * lease expiry without waiting.
   * @defaultValue `Date.now`
   */
  readonly now?: (() => number) | undefined;
}

interface HeldLock {
  readonly token: string;
  readonly expiresAt: number;
}

/**
 * A {@link TokenStore} that keeps records in this process's memory.
 *
 * Meant for tests and for single-process apps that can afford to lose every portal on restart
 * (which, with Bitrix24, means asking every portal to reinstall): nothing is persisted and nothing
 * is shared with other processes. Records go in and come out as copies, so a caller mutating a
 * returned record never changes what is stored.
 *
 * @example
 * ```ts
 * const store = new MemoryTokenStore();
 * const pool = new PortalClientPool({ store, clientId, clientSecret });
 * ```
 */
export class MemoryTokenStore implements TokenStore {
  /** Locks and listing work; nothing is shared with other processes. */
  readonly capabilities: StoreCapabilities = { lock: true, crossProcess: false, list: true };

  readonly #records = new Map<string, PortalRecord>();
  /** The last version of each deleted portal, so a re-created record continues from it. */
  readonly #deletedVersions = new Map<string, number>();
  readonly #locks = new Map<string, HeldLock>();
  readonly #now: () => number;

  /** Creates an empty store. */
  constructor(options: MemoryTokenStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  /** {@inheritDoc TokenStore.get} */
  async get(memberId: string): Promise<PortalRecord | undefined> {
    checkMemberId(memberId);
    const record = this.#records.get(memberId);
    return record === undefined ? undefined : { ...record };
  }

  /** {@inheritDoc TokenStore.upsert} */
  async upsert(record: PortalRecordInput): Promise<PortalRecord> {
    const input = checkRecordInput(record);
    const previous = this.#records.get(input.memberId)?.version ?? this.#deletedVersions.get(input.memberId) ?? 0;
    const stored: PortalRecord = { ...input, version: nextVersion(previous, input.memberId) };
    this.#deletedVersions.delete(input.memberId);
    this.#records.set(stored.memberId, stored);
    return { ...stored };
  }

  /** {@inheritDoc TokenStore.update} */
  async update(memberId: string, expectedVersion: number, patch: PortalRecordPatch): Promise<ConditionalWriteResult> {
    checkMemberId(memberId);
    checkExpectedVersion(expectedVersion);
    const changes = checkPatch(patch);
    const current = this.#records.get(memberId);
    if (current?.version !== expectedVersion) {
      return { ok: false, current: current === undefined ? undefined : { ...current } };
    }
    const next = applyPatch(current, changes);
    this.#records.set(memberId, next);
    return { ok: true, record: { ...next } };
  }

  /** {@inheritDoc TokenStore.delete} */
  async delete(memberId: string): Promise<boolean> {
    checkMemberId(memberId);
    const record = this.#records.get(memberId);
    if (record === undefined) return false;
    this.#deletedVersions.set(memberId, record.version);
    return this.#records.delete(memberId);
  }

  /** {@inheritDoc TokenStore.tryLock} */
  async tryLock(memberId: string, ttlMs: number): Promise<StoreLease | undefined> {
    checkMemberId(memberId);
    checkTtlMs(ttlMs);
    const now = this.#now();
    const held = this.#locks.get(memberId);
    if (held !== undefined && held.expiresAt > now) return undefined;
    const lock: HeldLock = { token: randomUUID(), expiresAt: now + ttlMs };
    this.#locks.set(memberId, lock);
    const locks = this.#locks;
    return {
      token: lock.token,
      expiresAt: lock.expiresAt,
      // Compares tokens, not objects' ages: a lapsed lease whose lock was taken over must not free it.
      release: async () => {
        if (locks.get(memberId)?.token === lock.token) locks.delete(memberId);
      },
    };
  }

  /** {@inheritDoc TokenStore.list} */
  async list(options?: PortalListOptions): Promise<PortalListPage> {
    const { after, limit } = checkListOptions(options);
    const keys = [...this.#records.keys()]
      .filter((memberId) => after === undefined || memberId > after)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const page = keys.slice(0, limit);
    const records = page.map((memberId) => ({ ...(this.#records.get(memberId) as PortalRecord) }));
    return { records, next: keys.length > limit ? page.at(-1) : undefined };
  }
}
