// The TokenStore contract: what every adapter (ours or a user's) implements, method by method.
// Adapters stay thin: timestamps, merging and retries live in the core; a store keeps records and versions.

/**
 * Bitrix24 app status letters: F free, D demo, T trial, P paid, L local, S subscription.
 * Kept as a string so an unknown future letter is stored as given rather than rejected.
 */
export type AppStatus = 'F' | 'D' | 'T' | 'P' | 'L' | 'S' | (string & {});

/**
 * Lifecycle state of a stored chain: `active`; `revoked` once the OAuth host refused the chain for
 * good (`invalid_grant`, `NOT_INSTALLED`); `suspended` while the portal is unpaid
 * (`PAYMENT_REQUIRED`), which may clear.
 */
export type PortalState = 'active' | 'revoked' | 'suspended';

/**
 * Which of a portal's chains a record holds: `'portal'`, the portal's own chain (the installer's,
 * what `clientFor(memberId)` uses), or `'user:<id>'`, the chain of one Bitrix24 user of the portal
 * (what `clientFor(memberId, { userId })` uses). Build the second with {@link userChain}.
 */
export type ChainId = 'portal' | `user:${number}`;

/** The chain id of the portal's own chain. */
export const PORTAL_CHAIN = 'portal' satisfies ChainId;

/** The chain id of one user's chain: `userChain(7)` is `'user:7'`. */
export function userChain(userId: number): ChainId {
  if (!Number.isSafeInteger(userId) || userId < 1) throw new TypeError('userId must be a positive safe integer');
  return `user:${userId}`;
}

/**
 * Names one record: a `memberId` string names the portal's chain; `{ memberId, chain }` names any
 * chain of the portal. Stores normalise it with `resolveKey` semantics: a string is
 * `{ memberId, chain: 'portal' }`.
 */
export type ChainKey = string | ChainRef;

/** One chain of one portal, named in full. */
export interface ChainRef {
  /** The portal's `member_id`. */
  readonly memberId: string;
  /** Which of its chains. */
  readonly chain: ChainId;
}

/**
 * One chain's record, keyed by `memberId` and `chain`.
 *
 * Times: `expires` is unix **seconds** (as Bitrix24 sends it); every `...At` field is unix
 * **milliseconds**. Absent values are `null`, never `undefined`, so a record survives JSON and SQL
 * round-trips unchanged.
 */
export interface PortalRecord {
  /** The portal's `member_id`: stable across renames, the key of everything. */
  readonly memberId: string;
  /**
   * Which chain of the portal this record holds: `'portal'` or `'user:<id>'`. With `memberId`, the
   * record's key. Records written before chains existed read as `'portal'`.
   */
  readonly chain: ChainId;
  /** The portal's host as last seen (`acme.bitrix24.com`, or `host:port` on premises). Mutable. */
  readonly domain: string;
  /** The portal's REST root, such as `https://acme.bitrix24.com/rest/`. */
  readonly clientEndpoint: string;
  /** The OAuth server's REST root, such as `https://oauth.bitrix.info/rest/`. */
  readonly serverEndpoint: string;
  /** The current access token. */
  readonly accessToken: string;
  /** The current (single-use) refresh token. */
  readonly refreshToken: string;
  /** When the access token expires, unix seconds. */
  readonly expires: number;
  /** Comma-separated scopes, such as `crm,user_brief`. */
  readonly scope: string;
  /** App status letter. */
  readonly status: AppStatus;
  /** The Bitrix24 user the chain acts as, when known (for a `'user:<id>'` chain, that id). */
  readonly userId: number | null;
  /** The per-portal `application_token` that authenticates later events, when known. */
  readonly applicationToken: string | null;
  /** `active`, or `revoked` once the OAuth server refused the chain for good. */
  readonly state: PortalState;
  /** Why the chain is revoked or suspended (the OAuth `error` string), or `null` while active. */
  readonly revokedReason: string | null;
  /** When the portal was first installed (this record created), unix ms. */
  readonly installedAt: number;
  /** When the record last changed in any way, unix ms. */
  readonly updatedAt: number;
  /** When the token pair last changed (install, update, refresh), unix ms. Feeds the keep-alive sweep. */
  readonly chainUpdatedAt: number;
  /** When the chain was revoked or suspended, unix ms, or `null` while active. */
  readonly revokedAt: number | null;
  /**
   * The `ts` (unix seconds, Bitrix24's clock) of the newest lifecycle event applied to this chain,
   * or `null`. An older event arriving later (a replay, a late delivery) changes nothing.
   */
  readonly eventTs: number | null;
  /**
   * A counter that every successful write increments (the first write of a chain gives 1).
   * Conditional writes compare against it. It never repeats for a key in a store, not even
   * across a delete and a re-create: a record created after a delete continues from the deleted
   * one's version, so a conditional write based on a read from before the delete conflicts
   * instead of landing on the new record. Adapters must handle values up to
   * `Number.MAX_SAFE_INTEGER`.
   */
  readonly version: number;
}

/**
 * A full record without its `version`: what {@link TokenStore.upsert} takes. `chain` may be left
 * out for the portal's chain, `eventTs` when no lifecycle event wrote it.
 */
export type PortalRecordInput = Omit<PortalRecord, 'version' | 'chain' | 'eventTs'> & ChainOfInput;

/** The optional fields of a {@link PortalRecordInput}. */
export interface ChainOfInput {
  /** Which chain of the portal the record holds. @defaultValue `'portal'` */
  readonly chain?: ChainId | undefined;
  /** The `ts` of the lifecycle event that wrote it. @defaultValue `null` */
  readonly eventTs?: number | null | undefined;
}

/** The fields a conditional write may change (never `memberId`, `chain` or `version`). */
export type PortalRecordPatch = Partial<Omit<PortalRecord, 'memberId' | 'chain' | 'version'>>;

/** The outcome of {@link TokenStore.update}: the new record, or the conflict with what is stored now. */
export type ConditionalWriteResult = ConditionalWriteSuccess | ConditionalWriteConflict;

/** A conditional write that was applied. */
export interface ConditionalWriteSuccess {
  /** Always `true`. */
  readonly ok: true;
  /** The record as stored, with its new `version`. */
  readonly record: PortalRecord;
}

/** A conditional write that was refused because the stored version differed (or nothing was stored). */
export interface ConditionalWriteConflict {
  /** Always `false`. */
  readonly ok: false;
  /** What is stored now (`undefined` when the record was deleted). */
  readonly current: PortalRecord | undefined;
}

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

/** One page of {@link TokenStore.list}. */
export interface PortalListPage {
  /** Records in ascending `memberId` order. */
  readonly records: readonly PortalRecord[];
  /** Pass as `after` to get the next page; `undefined` on the last page. */
  readonly next: string | undefined;
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
 * One step of a shared request budget ({@link TokenStore.acquire}), in the GCRA form: the budget
 * lets `burst` requests through at once and then one every `1000 / ratePerSec` ms.
 */
export interface BudgetSpec {
  /** Sustained rate, in requests (cost units) per second; finite and > 0. */
  readonly ratePerSec: number;
  /** How many requests (cost units) may go at once after a quiet period; finite and >= 1. */
  readonly burst: number;
  /**
   * How many units this step takes. `1` for a request; `0` only asks how long a request would
   * wait now and takes nothing; fractions are allowed (operating-time accounts).
   * @defaultValue 1
   */
  readonly cost?: number | undefined;
  /**
   * When the wait would be longer than this (ms), nothing is taken and the answer has
   * `granted: false` (a caller's deadline).
   * @defaultValue no limit
   */
  readonly maxWaitMs?: number | undefined;
  /**
   * Pushes the budget back first: no unit is free before `pushBackMs` from now, for every process
   * sharing the key (after a 503 `QUERY_LIMIT_EXCEEDED`). Applied even when the step is not granted.
   * @defaultValue 0 (no push-back)
   */
  readonly pushBackMs?: number | undefined;
}

/** The answer of {@link TokenStore.acquire}. */
export interface BudgetGrant {
  /**
   * How long (ms, >= 0) the caller must wait before the request leaves. When `granted` is false,
   * how long it would have had to wait.
   */
  readonly waitMs: number;
  /** `false` only when `maxWaitMs` was passed: then nothing was taken. */
  readonly granted: boolean;
}

/** One write, as a change feed delivers it. Carries no token. */
export interface StoreChange {
  /** The portal written. */
  readonly memberId: string;
  /** The chain written; `undefined` when the write concerned every chain of the portal ({@link TokenStore.deletePortal}). */
  readonly chain: ChainId | undefined;
  /** The record's version after the write (the tombstone's version for a delete), when known. */
  readonly version: number | undefined;
  /** `true` when the write deleted the record(s). */
  readonly deleted: boolean;
}

/** What {@link TokenStore.subscribe} calls. Listeners must not throw; the store ignores what they throw. */
export interface StoreChangeListener {
  /** A write happened (in this process or another). */
  onChange(change: StoreChange): void;
  /**
   * The feed lost its connection (`'lost'`: changes may be missed until it is back) or came back
   * (`'restored'`: changes made in between were not delivered, so anything cached must be re-read).
   * The store reconnects by itself.
   */
  onStatus?(status: 'lost' | 'restored'): void;
}

/** A live subscription to a store's change feed. */
export interface StoreSubscription {
  /** Stops delivery and frees the connection the feed used. Idempotent. */
  close(): Promise<void>;
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
