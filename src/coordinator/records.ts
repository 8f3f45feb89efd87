// Small record helpers of the coordinator: keys, URLs and the patch a refresh answer makes.

import type { TokenResponse } from '../oauth/oauth-client.js';
import type { ChainId, PortalRecord, PortalRecordPatch } from '../store/token-store.js';

/** The key of a chain in this process's maps. */
export function chainKeyOf(memberId: string, chain: ChainId): string {
  return `${memberId} ${chain}`;
}

/** Whether `value` parses as an http(s) URL. */
export function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

/**
 * The fields a refresh answer changes; what the answer lacks is carried forward (PROTOCOL.md
 * section 3). A fresh pair makes the chain active again (a suspended or reactivated one).
 */
export function pairPatch(current: PortalRecord, tokens: TokenResponse, nowMs: number): PortalRecordPatch {
  const clientEndpoint =
    tokens.clientEndpoint !== undefined && isHttpUrl(tokens.clientEndpoint) ? tokens.clientEndpoint : current.clientEndpoint;
  return {
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken ?? current.refreshToken,
    expires: tokens.expires,
    scope: tokens.scope ?? current.scope,
    status: tokens.status ?? current.status,
    userId: tokens.userId ?? current.userId,
    clientEndpoint,
    domain: clientEndpoint === current.clientEndpoint ? current.domain : new URL(clientEndpoint).host,
    state: 'active',
    revokedAt: null,
    revokedReason: null,
    updatedAt: nowMs,
    chainUpdatedAt: nowMs,
  };
}
