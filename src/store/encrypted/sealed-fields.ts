// Sealing and opening the token fields of a record, a record input or a patch with a TokenCipher;
// shared by EncryptedTokenStore and the install spool. Every other field passes through unchanged.
// The store passes the record's destination (`binding`): its values are sealed as `v2` and open only
// while the record still points where it pointed when they were sealed.

import { DecryptionError } from '../../errors.js';
import { storedValueKind, TOKEN_FIELDS, type SealBinding, type TokenCipher, type TokenField } from './token-cipher.js';

type TokenFields = { [F in TokenField]?: (F extends 'applicationToken' ? string | null : string) | undefined };

/** How opening treats a plaintext value (one written before encryption was turned on). */
export interface OpenOptions {
  /** Accept it as is (`true`) or refuse it with a {@link DecryptionError} (`false`). */
  readonly allowPlaintext: boolean;
  /** Called for each plaintext value accepted (the owner logs it). */
  readonly onPlaintext?: ((field: TokenField) => void) | undefined;
}

/** The fields of a record that decide where its tokens go, or `undefined` when one is not a string. */
export function bindingOf(fields: Partial<SealBinding>): SealBinding | undefined {
  const { domain, clientEndpoint, serverEndpoint } = fields;
  if (typeof domain !== 'string' || typeof clientEndpoint !== 'string' || typeof serverEndpoint !== 'string') return undefined;
  return { domain, clientEndpoint, serverEndpoint };
}

/** A copy of `fields` with every token field present sealed with the write key (bound to `binding` when given). */
export function sealFields<T extends TokenFields>(cipher: TokenCipher, memberId: string, chain: string, fields: T, binding?: SealBinding): T {
  const copy: Record<string, unknown> = { ...fields };
  for (const field of TOKEN_FIELDS) {
    const value = fields[field];
    if (typeof value === 'string') copy[field] = cipher.seal(value, { memberId, chain, field, binding });
  }
  return copy as T;
}

/** A copy of `fields` with every token field present opened; throws {@link DecryptionError}. */
export function openFields<T extends TokenFields>(cipher: TokenCipher, memberId: string, chain: string, fields: T, options: OpenOptions, binding?: SealBinding): T {
  const copy: Record<string, unknown> = { ...fields };
  for (const field of TOKEN_FIELDS) {
    const value = fields[field];
    if (typeof value !== 'string') continue;
    const kind = storedValueKind(value);
    if (kind.kind === 'sealed') copy[field] = cipher.open(value, { memberId, chain, field, binding });
    else if (kind.kind === 'plaintext') {
      if (!options.allowPlaintext) throw new DecryptionError({ memberId, chain, field, keyId: undefined, reason: 'plaintext-refused' });
      options.onPlaintext?.(field);
    }
  }
  return copy as T;
}

/**
 * Whether any token field of `fields` is not sealed with the write key: plaintext, sealed with an
 * older key, or (when `bound`) sealed in the previous format without the record's destination.
 * Empty strings and `null` need nothing.
 */
export function needsResealing(cipher: TokenCipher, fields: TokenFields, bound = false): boolean {
  return TOKEN_FIELDS.some((field) => {
    const value = fields[field];
    if (typeof value !== 'string') return false;
    const kind = storedValueKind(value);
    return kind.kind === 'plaintext' || (kind.kind === 'sealed' && (kind.keyId !== cipher.writeKeyId || (bound && !kind.bound)));
  });
}
