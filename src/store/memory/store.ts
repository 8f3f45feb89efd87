// MemoryTokenStore: the TokenStore contract held in a Map, for tests and single-process apps.
// Each method's read-compare-write runs without an `await` in between, which is what makes it atomic.

/* eslint-disable @typescript-eslint/require-await -- the methods are async so that a bad argument
   rejects like an I/O failure would, and they must not await: that is what keeps them atomic. */

import { randomUUID } from 'node:crypto';
import { budgetStep, checkBudgetKey, gcra } from '../budget-math.js';
import {
  applyPatch,
  checkExpectedVersion,
  checkListOptions,
  checkMemberId,
  checkPatch,
  checkRecordInput,
  checkTtlMs,
  nextVersion,
  resolveKey, afterCursor, chainCursor, readChainCursor } from '../record-checks.js';
import type {
  BudgetGrant,
  BudgetSpec,
  ChainKey,
  ConditionalWriteResult,
  PortalListOptions,
  PortalListPage,
  PortalRecord,
  PortalRecordInput,
  PortalRecordPatch,
  StoreCapabilities,
  StoreChange,
  StoreChangeListener,
  StoreLease,
  LockedRead,
  StoreSubscription,
  TokenStore,
} from '../token-store.js';

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
  /** Locks, listing and the change feed work; nothing is shared with other processes. */
  readonly capabilities: StoreCapabilities = { lock: true, crossProcess: false, list: true, changes: true, budget: true };

  /** Every portal's chains: memberId → chain → record. */
  readonly #portals = new Map<string, Map<string, PortalRecord>>();
  /** The last version of each deleted chain (`memberId chain`), so a re-created record continues from it. */
  readonly #deletedVersions = new Map<string, number>();
  readonly #locks = new Map<string, HeldLock>();
  readonly #listeners = new Set<StoreChangeListener>();
  /** Budget key → theoretical arrival time (unix ms). */
  readonly #budgets = new Map<string, number>();
  readonly #now: () => number;

  /** Creates an empty store. */
  constructor(options: MemoryTokenStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  /** Nothing to prepare: always ready. */
  async ready(): Promise<void> {}

  /** {@inheritDoc TokenStore.get} */
  async get(key: ChainKey): Promise<PortalRecord | undefined> {
    return this.#read(key);
  }

  #read(key: ChainKey): PortalRecord | undefined {
    const { memberId, chain } = resolveKey(key);
    const record = this.#portals.get(memberId)?.get(chain);
    return record === undefined ? undefined : { ...record };
  }

  /** {@inheritDoc TokenStore.upsert} */
  async upsert(record: PortalRecordInput): Promise<PortalRecord> {
    const input = checkRecordInput(record);
    const tomb = `${input.memberId} ${input.chain}`;
    const chains = this.#portals.get(input.memberId) ?? new Map<string, PortalRecord>();
    const previous = chains.get(input.chain)?.version ?? this.#deletedVersions.get(tomb) ?? 0;
    const stored: PortalRecord = { ...input, version: nextVersion(previous, input.memberId) };
    this.#deletedVersions.delete(tomb);
    chains.set(stored.chain, stored);
    this.#portals.set(stored.memberId, chains);
    this.#publish({ memberId: stored.memberId, chain: stored.chain, version: stored.version, deleted: false });
    return { ...stored };
  }

  /** {@inheritDoc TokenStore.update} */
  async update(key: ChainKey, expectedVersion: number, patch: PortalRecordPatch): Promise<ConditionalWriteResult> {
    const { memberId, chain } = resolveKey(key);
    checkExpectedVersion(expectedVersion);
    const changes = checkPatch(patch);
    const chains = this.#portals.get(memberId);
    const current = chains?.get(chain);
    if (chains === undefined || current?.version !== expectedVersion) {
      return { ok: false, current: current === undefined ? undefined : { ...current } };
    }
    const next = applyPatch(current, changes);
    chains.set(chain, next);
    this.#publish({ memberId, chain, version: next.version, deleted: false });
    return { ok: true, record: { ...next } };
  }

  /** {@inheritDoc TokenStore.delete} */
  async delete(key: ChainKey): Promise<boolean> {
    const { memberId, chain } = resolveKey(key);
    const chains = this.#portals.get(memberId);
    const record = chains?.get(chain);
    if (chains === undefined || record === undefined) return false;
    this.#deletedVersions.set(`${memberId} ${chain}`, record.version);
    chains.delete(chain);
    if (chains.size === 0) this.#portals.delete(memberId);
    this.#publish({ memberId, chain, version: record.version, deleted: true });
    return true;
  }

  /** {@inheritDoc TokenStore.deletePortal} */
  async deletePortal(memberId: string): Promise<number> {
    checkMemberId(memberId);
    const chains = this.#portals.get(memberId);
    if (chains === undefined) return 0;
    for (const record of chains.values()) this.#deletedVersions.set(`${memberId} ${record.chain}`, record.version);
    this.#portals.delete(memberId);
    this.#publish({ memberId, chain: undefined, version: undefined, deleted: true });
    return chains.size;
  }

  /** {@inheritDoc TokenStore.subscribe} */
  async subscribe(listener: StoreChangeListener): Promise<StoreSubscription> {
    if (listener === null || typeof listener !== 'object' || typeof listener.onChange !== 'function') {
      throw new TypeError('listener must have an onChange function');
    }
    this.#listeners.add(listener);
    return {
      close: async () => {
        this.#listeners.delete(listener);
      },
    };
  }

  /** Delivers a change after the write, outside the write (a listener that throws changes nothing). */
  #publish(change: StoreChange): void {
    for (const listener of this.#listeners) {
      queueMicrotask(() => {
        try {
          listener.onChange(change);
        } catch {
          // Listeners must not throw; the store ignores what they throw (see StoreChangeListener).
        }
      });
    }
  }

  /** One GCRA step of `key`'s budget in this process's memory; see {@link TokenStore.acquire}. */
  async acquire(key: string, spec: BudgetSpec): Promise<BudgetGrant> {
    checkBudgetKey(key);
    const step = budgetStep(spec);
    const now = this.#now();
    const { tat, grant } = gcra(this.#budgets.get(key), now, step);
    // Past arrival times mean a full budget: forgetting them keeps the map as small as the busy keys.
    if (this.#budgets.size > 1024) for (const [other, at] of this.#budgets) if (at <= now) this.#budgets.delete(other);
    if (tat > now) this.#budgets.set(key, tat);
    else this.#budgets.delete(key);
    return grant;
  }

  /** {@inheritDoc TokenStore.tryLock} */
  async tryLock(key: ChainKey, ttlMs: number): Promise<StoreLease | undefined> {
    return this.#lock(key, ttlMs);
  }

  #lock(key: ChainKey, ttlMs: number): StoreLease | undefined {
    const { memberId, chain } = resolveKey(key);
    checkTtlMs(ttlMs);
    const name = `${memberId} ${chain}`;
    const now = this.#now();
    const held = this.#locks.get(name);
    if (held !== undefined && held.expiresAt > now) return undefined;
    const lock: HeldLock = { token: randomUUID(), expiresAt: now + ttlMs };
    this.#locks.set(name, lock);
    const locks = this.#locks;
    return {
      token: lock.token,
      expiresAt: lock.expiresAt,
      // Compares tokens, not objects' ages: a lapsed lease whose lock was taken over must not free it.
      release: async () => {
        if (locks.get(name)?.token === lock.token) locks.delete(name);
      },
      renew: async (ttl: number) => {
        checkTtlMs(ttl);
        const now = this.#now();
        const current = locks.get(name);
        if (current?.token !== lock.token || current.expiresAt <= now) return false;
        locks.set(name, { token: lock.token, expiresAt: now + ttl });
        return true;
      },
    };
  }

  /** {@inheritDoc TokenStore.tryLockAndGet} */
  async tryLockAndGet(key: ChainKey, ttlMs: number): Promise<LockedRead> {
    // One synchronous step: no write lands between the try and the read.
    const lease = this.#lock(key, ttlMs);
    return { lease, record: this.#read(key) };
  }

  /** {@inheritDoc TokenStore.list} */
  async list(options?: PortalListOptions): Promise<PortalListPage> {
    const { after, limit } = checkListOptions(options);
    const keys = [...this.#portals.entries()]
      .filter(([memberId, chains]) => chains.has('portal') && (after === undefined || memberId > after))
      .map(([memberId]) => memberId)
      .sort(byCodeUnits);
    const page = keys.slice(0, limit);
    const records = page.map((memberId) => ({ ...(this.#portals.get(memberId)?.get('portal') as PortalRecord) }));
    return { records, next: keys.length > limit ? page.at(-1) : undefined };
  }

  /** {@inheritDoc TokenStore.listAll} */
  async listAll(options?: PortalListOptions): Promise<PortalListPage> {
    const { limit } = checkListOptions(options);
    const cursor = readChainCursor(options?.after);
    const all: PortalRecord[] = [];
    for (const [memberId, chains] of this.#portals) {
      for (const [chain, record] of chains) if (afterCursor(memberId, chain, cursor)) all.push(record);
    }
    all.sort((a, b) => byCodeUnits(a.memberId, b.memberId) || byCodeUnits(a.chain, b.chain));
    const records = all.slice(0, limit).map((record) => ({ ...record }));
    return { records, next: all.length > limit ? chainCursor(records.at(-1)!) : undefined };
  }

  /** {@inheritDoc TokenStore.listChains} */
  async listChains(memberId: string): Promise<readonly PortalRecord[]> {
    checkMemberId(memberId);
    const chains = this.#portals.get(memberId);
    if (chains === undefined) return [];
    return [...chains.values()]
      .filter((record) => record.chain !== 'portal')
      .sort((a, b) => byCodeUnits(a.chain, b.chain))
      .map((record) => ({ ...record }));
  }
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
