// Turns a verified token chain into the record a store keeps: the one place that decides which fields
// a fresh chain replaces and which survive from the portal's previous record.

import type { PortalAuth } from '../events/types.js';
import type { PortalRecord, PortalRecordInput } from '../store/token-store.js';

/**
 * Builds the record to upsert for a portal whose chain has just been verified (an install, an
 * update, an authorization-code exchange).
 *
 * The chain, endpoints, scope, status and user come from `auth`; `installedAt` survives from
 * `existing` (a reinstall is still the same portal), `applicationToken` too when `auth` carries none
 * (the authorization-code flow never does); `updatedAt` and `chainUpdatedAt` become `now`; the
 * portal becomes `active` again, clearing any revocation.
 *
 * Only pass an `auth` whose tokens were verified and whose `serverEndpoint` is a trusted OAuth
 * host: this function checks nothing.
 *
 * @param auth - the verified chain and portal identity.
 * @param existing - the portal's current record, or `undefined` for a first install.
 * @param now - the current time, unix milliseconds.
 * @returns the record input for `TokenStore.upsert`.
 */
export function portalRecordFromAuth(
  auth: PortalAuth,
  existing: PortalRecord | undefined,
  now: number,
): PortalRecordInput {
  return {
    memberId: auth.memberId,
    domain: auth.domain,
    clientEndpoint: auth.clientEndpoint,
    serverEndpoint: auth.serverEndpoint,
    accessToken: auth.accessToken,
    refreshToken: auth.refreshToken,
    expires: auth.expires,
    scope: auth.scope,
    status: auth.status,
    userId: auth.userId,
    applicationToken: auth.applicationToken ?? existing?.applicationToken ?? null,
    state: 'active',
    revokedReason: null,
    installedAt: existing?.installedAt ?? now,
    updatedAt: now,
    chainUpdatedAt: now,
    revokedAt: null,
  };
}
