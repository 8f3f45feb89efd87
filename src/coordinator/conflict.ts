// The one rule for what a writer does after its conditional write was refused. Every writer of the
// coordinator (a refreshed pair, a revocation, a portal's new address) goes through it.

import type { PortalRecord } from '../store/token-store.js';

/** What a writer learns from the record stored now, compared with the one its write was based on. */
export type ConflictOutcome =
  /** Nothing is stored any more: the portal (or this chain) was uninstalled or forgotten. */
  | { readonly kind: 'gone' }
  /** The chain was revoked meanwhile; nothing may be written over it. */
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
 * Classifies a conflict. `base` is the record the refused write was based on, `current` what the
 * store holds now (`undefined` when nothing).
 */
export function afterConflict(base: PortalRecord, current: PortalRecord | undefined): ConflictOutcome {
  if (current === undefined) return { kind: 'gone' };
  if (current.state === 'revoked') return { kind: 'revoked', record: current };
  if (!sameChain(base, current)) return { kind: 'replaced', record: current };
  return { kind: 'retry', record: current };
}
