// Re-sealing every record of an encrypted store with its write key: pages through the inner store,
// writes each record that needs it with a conditional update of its token fields only.

import { DecryptionError, type DecryptionFailureReason } from '../../errors.js';
import { bindingOf, needsResealing, openFields, sealFields, type OpenOptions } from './sealed-fields.js';
import { TOKEN_FIELDS, type TokenCipher } from './token-cipher.js';
import type { ChainId, PortalRecord, PortalRecordPatch, TokenStore } from '../token-store.js';
import { walkStore } from '../walk.js';

/** Options of `EncryptedTokenStore.rekey`. */
export interface RekeyOptions {
  /** Records read per `list` page. @defaultValue 100 */
  readonly pageSize?: number | undefined;
  /** Conditional writes tried per record before it is counted in `conflicts`. @defaultValue 5 */
  readonly attempts?: number | undefined;
}

/** A record `rekey` could not decrypt (it was left as it is). */
export interface RekeyFailure {
  /** The portal. */
  readonly memberId: string;
  /** The chain. */
  readonly chain: ChainId;
  /** The key id stored beside the value that failed, when readable. */
  readonly keyId: string | undefined;
  /** Why it failed (see `DecryptionError.reason`). */
  readonly reason: DecryptionFailureReason;
}

/** What `EncryptedTokenStore.rekey` did. */
export interface RekeyResult {
  /** Records read (portal chains and user chains). */
  readonly scanned: number;
  /** Records re-sealed with the write key. */
  readonly rekeyed: number;
  /** Records that were already sealed with the write key only. */
  readonly current: number;
  /** Records that kept changing under every attempt and were left for a later run. */
  readonly conflicts: number;
  /** Records deleted while the run was on them. */
  readonly vanished: number;
  /** Records that could not be decrypted, left as they are. */
  readonly failed: readonly RekeyFailure[];
}

type Outcome = 'rekeyed' | 'current' | 'conflicts' | 'vanished';

/** Re-seals every record of `inner` (see `EncryptedTokenStore.rekey`). */
export async function rekeyStore(inner: TokenStore, cipher: TokenCipher, open: OpenOptions, options: RekeyOptions): Promise<RekeyResult> {
  const pageSize = options.pageSize ?? 100;
  const attempts = options.attempts ?? 5;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new TypeError('options.pageSize must be a positive integer');
  if (!Number.isSafeInteger(attempts) || attempts < 1) throw new TypeError('options.attempts must be a positive integer');
  if (!inner.capabilities.list || inner.list === undefined) {
    throw new TypeError('rekey needs an inner store that lists its records (capabilities.list)');
  }
  const counts: Record<Outcome, number> = { rekeyed: 0, current: 0, conflicts: 0, vanished: 0 };
  const failed: RekeyFailure[] = [];
  let scanned = 0;
  const visit = async (record: PortalRecord): Promise<void> => {
    scanned++;
    try {
      counts[await reseal(inner, cipher, open, record, attempts)]++;
    } catch (error) {
      if (!(error instanceof DecryptionError)) throw error;
      failed.push({ memberId: record.memberId, chain: record.chain, keyId: error.keyId, reason: error.reason });
    }
  };
  // Every chain, a user's chain without its portal's included (where the inner store has listAll).
  for await (const page of walkStore(inner, { pageSize, userChains: true })) {
    for (const record of page.records) await visit(record);
  }
  return { scanned, ...counts, failed };
}

async function reseal(inner: TokenStore, cipher: TokenCipher, open: OpenOptions, first: PortalRecord, attempts: number): Promise<Outcome> {
  const key = { memberId: first.memberId, chain: first.chain };
  let record = first;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (!needsResealing(cipher, record, true)) return 'current';
    // Sealed as v2, bound to where the record points now (a v1 value carried no destination).
    const binding = bindingOf(record);
    const plain = openFields(cipher, record.memberId, record.chain, pickTokens(record), open, binding);
    const patch = sealFields(cipher, record.memberId, record.chain, plain, binding);
    const result = await inner.update(key, record.version, patch);
    if (result.ok) return 'rekeyed';
    if (result.current === undefined) return 'vanished';
    record = result.current;
  }
  return needsResealing(cipher, record, true) ? 'conflicts' : 'current';
}

function pickTokens(record: PortalRecord): PortalRecordPatch {
  const patch: Record<string, unknown> = {};
  for (const field of TOKEN_FIELDS) patch[field] = record[field];
  return patch;
}
