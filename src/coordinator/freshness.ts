// When a pair counts as fresh: one formula for the refresh-ahead window, used by the clients'
// expiry, by the coordinator's "has the store moved on?" check and by the sweep.

import type { PortalRecord } from '../store/token-store.js';

/** How far ahead of expiry a pair is refreshed. */
export interface FreshnessPolicy {
  /** Seconds before `expires` at which a pair counts as expiring. */
  readonly refreshAheadSec: number;
  /** Up to this many extra seconds, chosen per pair, spread refreshes of portals installed together. */
  readonly refreshJitterSec: number;
}

/**
 * Seconds before `record.expires` at which the pair counts as expiring: the refresh-ahead window
 * plus `jitter` (a number in [0, 1) scaled by the policy's jitter), never more than half the pair's
 * lifetime, so a short-lived pair can never count as expiring the moment it is issued.
 */
export function refreshWindow(record: PortalRecord, policy: FreshnessPolicy, jitter = 0): number {
  const lifetime = Math.max(0, record.expires - Math.floor(record.chainUpdatedAt / 1000));
  const wanted = policy.refreshAheadSec + Math.floor(jitter * policy.refreshJitterSec);
  return Math.min(wanted, Math.floor(lifetime / 2));
}

/**
 * Whether a caller can use `record`'s access token now: it is not the token a portal just refused,
 * and it does not expire within `windowSec`.
 */
export function isUsable(record: PortalRecord, windowSec: number, nowMs: number, rejectedToken?: string): boolean {
  return record.accessToken !== rejectedToken && record.expires - windowSec > Math.floor(nowMs / 1000);
}
