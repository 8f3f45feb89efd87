// What the install spool keeps: one verified lifecycle event's record, its event time and kind. This
// module turns an entry into the bytes of its file (tokens sealed when encryption is on) and back.

import { DecryptionError } from '../errors.js';
import { checkMemberId, checkRecordInput } from '../store/record-checks.js';
import { openFields, sealFields } from '../store/encrypted/sealed-fields.js';
import { storedValueKind, TOKEN_FIELDS, type TokenCipher } from '../store/encrypted/token-cipher.js';
import type { PortalRecordInput } from '../store/token-store.js';

/** Which lifecycle event an entry comes from. */
export type SpoolEntryKind = 'install' | 'update';

/** A verified install or update the store could not take, as given to {@link FileInstallSpool.put}. */
export interface SpoolEntry {
  /** The portal (must equal `record.memberId`). */
  readonly memberId: string;
  /**
   * The event's `ts` (unix seconds, no later than the OAuth host's clock): replay compares it with
   * what is stored, so an event that is not newer than the stored chain's (an older one, or this
   * one applied before) changes nothing.
   */
  readonly ts: number;
  /** `install` (ONAPPINSTALL) or `update` (ONAPPUPDATE). */
  readonly kind: SpoolEntryKind;
  /** The record the event would have stored (what `store.upsert` takes). */
  readonly record: PortalRecordInput;
  /**
   * When replay may write it: `always` (the chain was proven an administrator's, so it may replace
   * a live chain), or `if-absent` (only where no active chain is stored by then).
   * @defaultValue `'always'`
   */
  readonly replace?: 'always' | 'if-absent' | undefined;
  /**
   * Whether the chain was proven a portal administrator's: then replay writes it over a chain that
   * is not a live administrator's even when that chain's event looks newer.
   * @defaultValue `false`
   */
  readonly admin?: boolean | undefined;
}

/** An entry as {@link FileInstallSpool.drain} hands it back. */
export interface SpooledEntry extends SpoolEntry {
  /** The entry's id in the spool (its file name without extension); ids sort oldest first. */
  readonly id: string;
  /** When the entry was spooled, unix ms. */
  readonly spooledAt: number;
}

const FORMAT = 1;

/** Checks an entry given to `put`; returns a copy holding only the known fields. */
export function checkEntry(entry: unknown): SpoolEntry {
  if (entry === null || typeof entry !== 'object') throw new TypeError('entry must be an object');
  const { memberId, ts, kind, record, replace, admin } = entry as Record<string, unknown>;
  checkMemberId(memberId, 'entry.memberId');
  if (typeof ts !== 'number' || !Number.isFinite(ts) || ts < 0) throw new TypeError('entry.ts must be a non-negative finite number (unix seconds)');
  if (kind !== 'install' && kind !== 'update') throw new TypeError("entry.kind must be 'install' or 'update'");
  const checked = checkRecordInput(record);
  if (checked.memberId !== memberId) throw new TypeError('entry.record.memberId must equal entry.memberId');
  if (replace !== undefined && replace !== 'always' && replace !== 'if-absent') throw new TypeError("entry.replace must be 'always' or 'if-absent'");
  if (admin !== undefined && typeof admin !== 'boolean') throw new TypeError('entry.admin must be a boolean');
  return { memberId, ts, kind, record: checked, replace: replace ?? 'always', admin: admin ?? false };
}

/** The bytes of an entry's file; tokens sealed with `cipher` when given. */
export function serializeEntry(entry: SpoolEntry, spooledAt: number, cipher: TokenCipher | undefined): Buffer {
  const chain = entry.record.chain ?? 'portal';
  const record = cipher === undefined ? entry.record : sealFields(cipher, entry.memberId, chain, entry.record);
  return Buffer.from(JSON.stringify({ format: FORMAT, memberId: entry.memberId, ts: entry.ts, kind: entry.kind, replace: entry.replace ?? 'always', admin: entry.admin ?? false, spooledAt, record }), 'utf8');
}

/** Why a file could not be read back as an entry. */
export class CorruptEntryError extends Error {}

/**
 * Reads an entry's file back. Throws {@link CorruptEntryError} for bytes that are not an entry, and
 * `DecryptionError` for tokens that cannot be opened (sealed without a key here, a wrong key, altered).
 */
export function parseEntry(id: string, bytes: Buffer, cipher: TokenCipher | undefined, allowPlaintext: boolean): SpooledEntry {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new CorruptEntryError('not JSON');
  }
  if (value === null || typeof value !== 'object') throw new CorruptEntryError('not an object');
  const { format, spooledAt, ...rest } = value as Record<string, unknown>;
  if (format !== FORMAT) throw new CorruptEntryError('unknown format');
  if (typeof spooledAt !== 'number' || !Number.isFinite(spooledAt)) throw new CorruptEntryError('bad spooledAt');
  let entry: SpoolEntry;
  try {
    entry = checkEntry(rest);
  } catch (error) {
    throw new CorruptEntryError(error instanceof Error ? error.message : 'invalid');
  }
  const chain = entry.record.chain ?? 'portal';
  if (cipher === undefined) {
    // Sealed values but no keys given: refuse rather than hand sealed strings on as tokens.
    for (const field of TOKEN_FIELDS) {
      const stored = entry.record[field];
      const kind = typeof stored === 'string' ? storedValueKind(stored) : undefined;
      if (kind?.kind === 'sealed') throw new DecryptionError({ memberId: entry.memberId, chain, field, keyId: kind.keyId, reason: 'unknown-key' });
    }
    return { ...entry, id, spooledAt };
  }
  const record = openFields(cipher, entry.memberId, chain, entry.record, { allowPlaintext });
  return { ...entry, record, id, spooledAt };
}
