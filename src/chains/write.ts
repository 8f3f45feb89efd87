// The one conditional-write loop and its one conflict rule. Every writer of a chain (a refreshed
// pair, a revocation, a portal's new address, a proven install, a spooled install, an uninstall's
// tombstone) writes on the version it read and, when the store says another write came first,
// decides from what is stored now: apply the same write again on top of it, or stop.

import type { ChainRef, PortalRecord, PortalRecordInput, PortalRecordPatch, TokenStore } from '../store/token-store.js';

/** What a writer learns from the record stored now, compared with the one its write was based on. */
export type ConflictOutcome =
  /** Nothing is stored any more: the portal (or this chain) was uninstalled or forgotten. */
  | { readonly kind: 'gone' }
  /** The chain was revoked or suspended meanwhile; nothing may be written over it. */
  | { readonly kind: 'revoked'; readonly record: PortalRecord }
  /** Another chain was stored meanwhile (an install, a re-authorization, another worker's refresh): it wins. */
  | { readonly kind: 'replaced'; readonly record: PortalRecord }
  /** Only other fields changed; the same write may be applied again on top of `record`. */
  | { readonly kind: 'retry'; readonly record: PortalRecord };

/** Whether two records hold the same token chain (the same pair). */
export function sameChain(a: PortalRecord, b: PortalRecord): boolean {
  return a.refreshToken === b.refreshToken && a.accessToken === b.accessToken;
}

/**
 * What the refused write was: a pair freshly minted from `base`'s refresh token, a state mark
 * (revoked or suspended), or a portal's new address.
 */
export type WriteIntent = 'pair' | 'mark' | 'move';

/**
 * Classifies a conflict. `base` is the record the refused write was based on, `current` what the
 * store holds now (`undefined` when nothing).
 *
 * One exception to "a revoked chain is final": a pair minted from the very refresh token the
 * revoked record still holds wins over that revocation. The revocation was caused by spending the
 * same token (another worker sent it after this one, whose lease had lapsed, and got
 * `invalid_grant`); the minted pair is the chain's live continuation.
 */
export function afterConflict(base: PortalRecord, current: PortalRecord | undefined, intent: WriteIntent = 'move'): ConflictOutcome {
  if (current === undefined) return { kind: 'gone' };
  if (current.state !== 'active') {
    if (intent === 'pair' && current.refreshToken === base.refreshToken) return { kind: 'retry', record: current };
    return { kind: 'revoked', record: current };
  }
  if (!sameChain(base, current)) return { kind: 'replaced', record: current };
  return { kind: 'retry', record: current };
}

/** What a writer decides after a conflict: write again on `record`, or stop with `value`. */
export type ConflictDecision<T> = { readonly retry: PortalRecord | undefined } | { readonly stop: T };

/** One conditional write, as {@link writeChain} runs it. */
export interface ChainWrite<T> {
  /** Where. */
  readonly store: TokenStore;
  /** Which chain. */
  readonly key: ChainRef;
  /** The record the write is based on; `undefined` when none was stored (then `create` is upserted). */
  readonly base: PortalRecord | undefined;
  /** The change, given the record it is applied on. */
  readonly patch: (base: PortalRecord) => PortalRecordPatch;
  /** The record to create where none is stored; without it, a missing record ends the write with `onConflict(undefined)`. */
  readonly create?: PortalRecordInput | undefined;
  /** The conflict rule of this writer: what the record stored now means for its write. */
  readonly onConflict: (current: PortalRecord | undefined) => ConflictDecision<T>;
  /**
   * A store failure on attempt `attempt` (1-based): resolve to try again, resolve `{ stop }` to end,
   * or throw. Without it, the failure is thrown.
   */
  readonly onStoreError?: ((error: unknown, attempt: number, last: boolean) => Promise<{ readonly stop: T } | undefined>) | undefined;
  /** Attempts before giving up. @defaultValue 5 */
  readonly attempts?: number | undefined;
}

/** How a {@link writeChain} ended. */
export type ChainWritten<T> = { readonly written: PortalRecord } | { readonly stopped: T } | { readonly exhausted: true };

/** Runs one conditional write with its writer's conflict rule; each conflict or store failure is one attempt. */
export async function writeChain<T>(write: ChainWrite<T>): Promise<ChainWritten<T>> {
  const attempts = write.attempts ?? 5;
  let base = write.base;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      if (base === undefined) {
        if (write.create === undefined) {
          const decided = write.onConflict(undefined);
          if ('stop' in decided) return { stopped: decided.stop };
          base = decided.retry;
          continue;
        }
        return { written: await write.store.upsert(write.create) };
      }
      const result = await write.store.update(write.key, base.version, write.patch(base));
      if (result.ok) return { written: result.record };
      const decided = write.onConflict(result.current);
      if ('stop' in decided) return { stopped: decided.stop };
      base = decided.retry;
    } catch (error) {
      if (write.onStoreError === undefined) throw error;
      const decided = await write.onStoreError(error, attempt, attempt === attempts);
      if (decided !== undefined) return { stopped: decided.stop };
    }
  }
  return { exhausted: true };
}
