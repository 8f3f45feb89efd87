// Which of two events is newer. An event's `ts` is a claim of whoever posted it: it orders events
// only up to the OAuth host's own clock (learned from the answer that proved the event's chain)
// plus a small skew, so nobody can post an event "from the future" that every later genuine event
// looks older than.

import type { TokenResponse } from '../oauth/oauth-client.js';

/** How far an event's `ts` may run ahead of the OAuth host's clock and still be believed, seconds. */
export const TS_SKEW_SEC = 300;

/** The OAuth host's time when it issued `tokens`, unix seconds (`expires - expires_in`). */
export function hostSecondsOf(tokens: Pick<TokenResponse, 'expires' | 'expiresIn'>): number | undefined {
  const issued = tokens.expires - tokens.expiresIn;
  return Number.isFinite(issued) && issued > 0 ? issued : undefined;
}

/**
 * The time an event is ordered by: its `ts`, but never later than the OAuth host's clock plus
 * {@link TS_SKEW_SEC}; a `ts` beyond that is a false claim and counts as the host's time.
 */
export function orderTs(ts: number | null, hostSec: number | undefined): number | null {
  if (ts === null || hostSec === undefined) return ts;
  return ts > hostSec + TS_SKEW_SEC ? hostSec : ts;
}

/** Whether an event with `ts` is older than the stored chain's event (`null`: unknown, never stale). */
export function isStale(ts: number | null, storedTs: number | null): boolean {
  return ts !== null && storedTs !== null && ts < storedTs;
}
