// Errors of what keeps data: a failed token store, a stored token that cannot be decrypted, a full
// install spool.

import { ErrorCode, PortalTokensError, type PortalTokensErrorOptions } from './base.js';
import { escapeText } from './escape.js';

/**
 * The token store failed. The original error is in `cause`.
 *
 * `transient` is `true` when the failure is about reaching the store (a connection refused or
 * lost, a timeout, a database restarting) and the same call may succeed later; `false` for a
 * corrupt record, a wrong schema or a misconfiguration, which need a person.
 */
export class StoreError extends PortalTokensError {
  readonly code = ErrorCode.StoreFailure;
  /** Whether retrying later may succeed (the store was unreachable rather than wrong). */
  readonly transient: boolean;
  /**
   * What was wrong with the store's schema, when that was the failure (`undefined` otherwise), so a
   * caller can tell it apart without reading the message:
   * - `'schema-missing'`: the store found none of its tables (or its file, or its keys) and was told
   *   not to create them (`createSchema: false`): most often a mistyped table or key prefix, or the
   *   wrong database.
   * - `'schema-version'`: its tables hold another schema version than this release reads: a newer
   *   one (upgrade the library), or an older one while `createSchema` is `false` (nothing migrates).
   */
  readonly reason: 'schema-missing' | 'schema-version' | undefined;
  constructor(
    message: string,
    options: PortalTokensErrorOptions & {
      transient?: boolean | undefined;
      reason?: 'schema-missing' | 'schema-version' | undefined;
    } = {},
  ) {
    super(message, options);
    this.transient = options.transient ?? false;
    this.reason = options.reason;
  }
}

/**
 * Why a stored token could not be decrypted; see {@link DecryptionError.reason}.
 * @inline
 */
export type DecryptionFailureReason = 'unknown-key' | 'authentication' | 'malformed' | 'plaintext-refused';

/**
 * A stored token could not be decrypted (an `EncryptedTokenStore` or an encrypted install spool).
 * No token is ever returned in its place, and the pool never treats it as a revocation: the record
 * is left as it is. The message names the portal, chain, field and key id, never the value or a key.
 *
 * `reason`: `unknown-key` (no key with the stored key id was configured), `authentication` (a
 * wrong key, or a value that was altered, truncated or moved from another record), `malformed`
 * (not a well-formed encrypted value), `plaintext-refused` (a plaintext token while
 * `allowPlaintext` is `false`).
 */
export class DecryptionError extends PortalTokensError {
  readonly code = ErrorCode.DecryptionFailed;
  /** The key id stored beside the value, when one could be read. */
  readonly keyId: string | undefined;
  /** The record's chain (`'portal'` or `'user:<id>'`). */
  readonly chain: string;
  /** The field that failed: `accessToken`, `refreshToken` or `applicationToken`. */
  readonly field: string;
  /** Why it failed. */
  readonly reason: DecryptionFailureReason;
  constructor(
    details: { memberId: string; chain: string; field: string; keyId: string | undefined; reason: DecryptionFailureReason },
    options: Omit<PortalTokensErrorOptions, 'memberId'> = {},
  ) {
    const key = details.keyId === undefined ? '' : ` (key id ${escapeText(details.keyId)})`;
    super(
      `Cannot decrypt the ${escapeText(details.field)} of portal ${escapeText(details.memberId)}, chain ${escapeText(details.chain)}${key}: ${DECRYPTION_TEXT[details.reason]}`,
      { ...options, memberId: details.memberId },
    );
    this.keyId = details.keyId;
    this.chain = details.chain;
    this.field = details.field;
    this.reason = details.reason;
  }
}

const DECRYPTION_TEXT: Record<DecryptionFailureReason, string> = {
  'unknown-key': 'no key with this id is configured',
  authentication: 'the key is wrong or the value was altered, truncated or moved from another record',
  malformed: 'the stored value is not a well-formed encrypted value',
  'plaintext-refused': 'the value is stored in plaintext and allowPlaintext is false',
};

/**
 * The install spool refused an entry because it holds `maxEntries` entries or `maxBytes` bytes
 * already, or the portal's share (`maxEntriesPerPortal`). The lifecycle handler answers 503: the
 * event was not kept.
 */
export class SpoolFullError extends PortalTokensError {
  readonly code = ErrorCode.SpoolFull;
  /** Which bound was reached: `entries`, `bytes`, or the portal's share (`portal`). */
  readonly limit: 'entries' | 'bytes' | 'portal';
  constructor(limit: 'entries' | 'bytes' | 'portal', options: PortalTokensErrorOptions = {}) {
    super(`The install spool is full (its ${SPOOL_BOUND[limit]} bound is reached)`, options);
    this.limit = limit;
  }
}

const SPOOL_BOUND = { entries: 'maxEntries', bytes: 'maxBytes', portal: 'maxEntriesPerPortal' } as const;
