// The verification rules: what proves an install, an update or an authorization genuine
// (docs/protocol.md, "Proving an event genuine"). One module, so the lifecycle handler and the
// authorization flow cannot drift apart.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { PortalRecord } from '../store/token-store.js';
import type { OAuthHostClient } from '../context.js';
import type { AppInfo } from './oauth-client.js';

/** Why a claim was refused, for the log (never sent to the caller). */
export type Refusal =
  | 'untrusted_server_endpoint'
  | 'untrusted_server_domain'
  | 'token_rejected'
  | 'client_id_mismatch'
  | 'member_id_mismatch'
  | 'domain_mismatch'
  | 'application_token_mismatch'
  | 'no_stored_application_token'
  | 'untrusted_client_endpoint'
  | 'not_admin_live_chain'
  | 'stored_chain_unconfirmed'
  | 'app_still_installed'
  | 'state_portal_mismatch';

/** What a chain is claimed to be: this app's, for this portal, on this domain (when known). */
export interface ChainClaim {
  /** The app's own `client_id`. */
  readonly clientId: string;
  /** The portal the chain is claimed for. */
  readonly memberId: string;
  /** The portal's domain as claimed; `undefined` when the claim names none. */
  readonly domain: string | undefined;
}

/**
 * Compares the trusted OAuth host's `app.info` answer with a claim: the token must be this app's
 * (`client_id`), for the claimed portal (`member_id`), and on the claimed domain when both name one
 * (compared without case).
 * @returns the first mismatch, or `undefined` when the answer confirms the claim.
 */
export function appInfoRefusal(info: AppInfo, claim: ChainClaim): Refusal | undefined {
  if (info.clientId !== claim.clientId) return 'client_id_mismatch';
  if (info.memberId !== claim.memberId) return 'member_id_mismatch';
  if (claim.domain !== undefined && info.domain !== undefined && info.domain.toLowerCase() !== claim.domain.toLowerCase()) {
    return 'domain_mismatch';
  }
  return undefined;
}

/**
 * Asks the trusted OAuth host at `base` (never one taken from a payload) about `accessToken` and
 * compares the answer with the claim (`clientId` is the OAuth client's own).
 * @returns the answer and the refusal, if any. Errors of the OAuth client propagate.
 */
export async function verifyChain(
  oauth: Pick<OAuthHostClient, 'clientId' | 'appInfo'>,
  base: string,
  accessToken: string,
  claim: Omit<ChainClaim, 'clientId'>,
): Promise<{ readonly info: AppInfo; readonly refusal: Refusal | undefined }> {
  const info = await oauth.appInfo(base, accessToken);
  return { info, refusal: appInfoRefusal(info, { ...claim, clientId: oauth.clientId }) };
}

/**
 * Checks an event's `application_token` against the stored record's, in constant time: the only
 * proof an uninstall (or, with verification off, any event for a known portal) can carry. A record
 * without one (from the authorization-code flow) can never be matched.
 * @returns the refusal, or `undefined` when the tokens match.
 */
export function applicationTokenRefusal(received: string | null, stored: PortalRecord): Refusal | undefined {
  if (stored.applicationToken === null) return 'no_stored_application_token';
  if (received === null || !sameSecret(received, stored.applicationToken)) return 'application_token_mismatch';
  return undefined;
}

/** Constant-time equality of two secrets of any lengths: equal-length digests are compared. */
export function sameSecret(received: string, stored: string): boolean {
  const a = createHash('sha256').update(received, 'utf8').digest();
  const b = createHash('sha256').update(stored, 'utf8').digest();
  return timingSafeEqual(a, b);
}
