// The records a TokenStore keeps: a chain's id and key, the record itself, what an upsert takes, what
// a conditional write may change, and what it answers.

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

const USER_CHAIN = /^user:[1-9][0-9]{0,15}$/;

/** The chain id of one user's chain: `userChain(7)` is `'user:7'`. Read it back with {@link userIdOf}. */
export function userChain(userId: number): ChainId {
  if (!Number.isSafeInteger(userId) || userId < 1) throw new TypeError('userId must be a positive safe integer');
  return `user:${userId}`;
}

/**
 * The user whose chain a chain id names: `userIdOf('user:7')` is `7`; `undefined` for the portal's
 * chain and for any string that is no user chain id. The reverse of {@link userChain}.
 */
export function userIdOf(chain: string): number | undefined {
  if (!USER_CHAIN.test(chain)) return undefined;
  const userId = Number(chain.slice('user:'.length));
  return Number.isSafeInteger(userId) ? userId : undefined;
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
