// The one rule for what a writer does after its conditional write was refused. Every writer of the
// coordinator (a refreshed pair, a revocation, a portal's new address) goes through it.

import type { PortalRecord } from '../store/token-store.js';

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
