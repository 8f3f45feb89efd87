// The TokenStore contract: what every adapter (ours or a user's) implements, method by method.
// Adapters stay thin: timestamps, merging and retries live in the core; a store keeps records and versions.

import type { PortalTokensError } from '../errors/base.js';
import type { BudgetGrant, BudgetSpec } from './budget-types.js';
import type { StoreChangeListener, StoreSubscription } from './change-feed.js';
import type {
  ChainId,
  ChainKey,
  ConditionalWriteResult,
  PortalRecord,
  PortalRecordInput,
  PortalRecordPatch,
} from './portal-record.js';

// The contract's types live in sibling modules by subject; every one is handed on from here.
export { PORTAL_CHAIN, userChain, userIdOf } from './portal-record.js';
export type {
  AppStatus,
  PortalState,
  ChainId,
  ChainKey,
  ChainRef,
  PortalRecord,
  PortalRecordInput,
  ChainOfInput,
  PortalRecordPatch,
  ConditionalWriteResult,
  ConditionalWriteSuccess,
  ConditionalWriteConflict,
} from './portal-record.js';
export type { BudgetSpec, BudgetGrant } from './budget-types.js';
export type { StoreChange, StoreChangeListener, StoreSubscription } from './change-feed.js';

/** A held per-portal lock. */
export interface StoreLease {
  /** A unique token identifying this holder (a fencing token where the store supports one). */
  readonly token: string;
  /** When the lease lapses unless released first, unix ms by the store's clock. */
  readonly expiresAt: number;
  /**
   * Releases the lock if this lease still holds it; a no-op when it already lapsed and another
   * holder took over. Idempotent. Throws only on I/O failure.
   */
  release(): Promise<void>;
  /**
   * Extends the lease to `ttlMs` from now if this holder still holds it (a holder whose work runs
   * long renews before the lease lapses). Optional: stores without it rely on the fence of the
   * conditional write alone.
   * @returns `true` if renewed; `false` if the lease had lapsed and another holder may have it.
   */
  renew?(ttlMs: number): Promise<boolean>;
}

/** What {@link TokenStore.tryLockAndGet} answers: the try for the lock and the chain's record, together. */
export interface LockedRead {
  /** The lease, or `undefined` when another live lease holds the lock. */
  readonly lease: StoreLease | undefined;
  /**
   * The chain's record, `undefined` when none is stored. With a lease it is read after the lease was
   * taken, so it holds every write committed before (a previous holder's new pair included), as
   * a `get` made after `tryLock` would; without one it is what was stored when the try was made.
   */
  readonly record: PortalRecord | undefined;
}

/** One page of {@link TokenStore.list}. */
export interface PortalListPage {
  /** Records in ascending `memberId` order. */
  readonly records: readonly PortalRecord[];
  /** Pass as `after` to get the next page; `undefined` on the last page. */
  readonly next: string | undefined;
  /**
   * Records of this page the store holds but could not read (an encrypted store's record that does
   * not open), left out of `records` so one bad record does not stop a walk over every other one.
   * Absent or empty when every record was read.
   */
  readonly unreadable?: readonly UnreadableRecord[] | undefined;
}

/** A record a store holds but could not read; a walk reports it and goes on. @inline */
export interface UnreadableRecord {
  /** The portal. */
  readonly memberId: string;
  /** The chain. */
  readonly chain: ChainId;
  /** Why it could not be read (a `DecryptionError` for an encrypted store). */
  readonly error: PortalTokensError;
}

/** Options of {@link TokenStore.list}. */
export interface PortalListOptions {
  /** Return records whose `memberId` sorts strictly after this one. */
  readonly after?: string | undefined;
  /** At most this many records. @defaultValue 100 */
  readonly limit?: number | undefined;
}

/** What a store can do beyond the required methods. Declared, never faked. */
export interface StoreCapabilities {
  /** `tryLock` exists and gives mutual exclusion between holders of this store. */
  readonly lock: boolean;
  /** The lock (and the data) are shared with other processes that open the same store. */
  readonly crossProcess: boolean;
  /** `list` and `listChains` exist. */
  readonly list: boolean;
  /**
   * `subscribe` exists: every write, by any process sharing the store, is delivered as a
   * {@link StoreChange} to every subscriber. Absent means `false`.
   */
  readonly changes?: boolean | undefined;
  /**
   * `acquire` exists: a request budget (GCRA) per key, shared by every process that shares the
   * store when `crossProcess` is true. Absent means `false`.
   */
  readonly budget?: boolean | undefined;
}

/**
 * The storage contract every token store implements.
 *
 * All methods are async and throw (preferably a {@link StoreError}) on I/O failure; they never
 * report failure through a return value, and a thrown write leaves no half-written record.
 * The conformance suite in `b24-portal-tokens/testing` checks every rule stated here.
 */
export interface TokenStore {
  /** What this store can do beyond the required methods. */
  readonly capabilities: StoreCapabilities;

  /**
   * Checks, once at startup, that the store can be used: the database answers, the schema exists
   * (creating or migrating it), the directory is a writable directory. Fails fast with a
   * {@link StoreError} that says what to fix. Idempotent; the other methods also prepare the store
   * on first use, so calling it is optional but recommended.
   */
  ready?(): Promise<void>;

  /**
   * Reads one chain's record (`key` a `memberId` for the portal's chain).
   * @returns the record, or `undefined` when no record exists (never throws for a missing one).
   */
  get(key: ChainKey): Promise<PortalRecord | undefined>;

  /**
   * Creates or replaces a chain's record (keyed by `record.memberId` and `record.chain`)
   * unconditionally: used by a verified install or update. The stored `version` becomes the
   * previous version + 1 (1 for a new record), so conditional writes based on the old record
   * conflict afterwards.
   * @returns the record as stored, with its new `version`.
   */
  upsert(record: PortalRecordInput): Promise<PortalRecord>;

  /**
   * Conditional write: applies `patch` only if the stored record's `version` is still
   * `expectedVersion`, and increments the version. Atomic with respect to every other write to
   * this store, in this process and in others sharing it.
   * @returns `{ ok: true, record }` on success; `{ ok: false, current }` on a conflict, including
   *   when the record no longer exists (`current` is then `undefined`). A conflict never overwrites.
   */
  update(key: ChainKey, expectedVersion: number, patch: PortalRecordPatch): Promise<ConditionalWriteResult>;

  /**
   * Deletes one chain's record: its tokens are gone. Idempotent. The store keeps the last
   * `version` (and nothing else) so that a re-created record continues from it.
   * @returns `true` if a record was deleted, `false` if there was none.
   */
  delete(key: ChainKey): Promise<boolean>;

  /**
   * Deletes every chain of a portal (its own and every user's), as an uninstall does. Idempotent;
   * versions continue across a re-create as with {@link delete}.
   * @returns how many records were deleted.
   */
  deletePortal(memberId: string): Promise<number>;

  /**
   * Tries once, without waiting, to take one chain's lock for `ttlMs` milliseconds.
   * Present only when `capabilities.lock` is true. Chains of one portal lock independently.
   *
   * A lease that lapsed (its holder crashed or overran) may be taken over. Waiting and retrying
   * are the caller's business. The lock is advisory: correctness still rests on {@link update}.
   * @returns the lease, or `undefined` when another live lease holds the lock.
   */
  tryLock?(key: ChainKey, ttlMs: number): Promise<StoreLease | undefined>;

  /**
   * {@link tryLock} and {@link get} of the same chain in one round trip: tries once to take the lock
   * for `ttlMs`, then reads the record, and answers both. Optional even when `capabilities.lock` is
   * true (a store without it gets a `tryLock` and then a `get`); the refresh coordinator uses it when
   * present, so a refresh of a chain whose lock is free costs one round trip before the OAuth
   * request instead of three (read, lock, read again under the lock).
   *
   * The rules of `tryLock` hold for the lease (takeover of a lapsed one, exclusion of a live one),
   * and the record follows the rule of {@link LockedRead.record}: never older than the last write
   * committed before the lease was taken. A store that cannot read the record (an encrypted store's
   * record that does not open) releases the lease it took before it throws.
   */
  tryLockAndGet?(key: ChainKey, ttlMs: number): Promise<LockedRead>;

  /**
   * Lists portal chains (`chain: 'portal'` only) in ascending `memberId` order, a page at a time,
   * for maintenance sweeps. Present only when `capabilities.list` is true.
   */
  list?(options?: PortalListOptions): Promise<PortalListPage>;

  /**
   * Lists the user chains (every chain but `'portal'`) of one portal, in ascending `chain` order.
   * Present only when `capabilities.list` is true.
   */
  listChains?(memberId: string): Promise<readonly PortalRecord[]>;

  /**
   * Lists every chain of the store, portal and user chains alike (a user's chain whose portal has no
   * portal chain included, as `rememberUser` before the install leaves), in ascending `memberId`
   * then `chain` order, a page at a time; `after` is the previous page's `next`, an opaque cursor.
   * Optional even when `capabilities.list` is true: whole-store walks (migrate, rekey, status) use
   * it when present and otherwise fall back to `list` plus `listChains`, which cannot see a user's
   * chain without its portal's.
   */
  listAll?(options?: PortalListOptions): Promise<PortalListPage>;

  /**
   * Subscribes to the change feed: every later write by any process sharing the store is delivered
   * to `listener`. Present only when `capabilities.changes` is true. Rejects with a
   * {@link StoreError} when the feed cannot be set up.
   */
  subscribe?(listener: StoreChangeListener): Promise<StoreSubscription>;

  /**
   * One atomic step of the request budget of `key` (GCRA: one number per key, the theoretical
   * arrival time, moved on by `cost / ratePerSec` seconds per step). Slots are time-based, never
   * held: the answer says how long to wait, and a caller that dies frees nothing and blocks nothing.
   * Stores with a server clock (PostgreSQL, Redis) measure time by it, so processes with skewed
   * clocks share one budget. Keys are independent of records (`key` is any non-empty string of at
   * most 512 characters). Present only when `capabilities.budget` is true.
   */
  acquire?(key: string, spec: BudgetSpec): Promise<BudgetGrant>;

  /** Releases connections or handles the store opened itself. Idempotent. */
  close?(): Promise<void>;
}
