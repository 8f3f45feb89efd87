// A user's own chain, kept beside the portal's: taken from the app page (the chain Bitrix24 minted
// for the user who opened the app), proven at a trusted OAuth host, stored under `user:<id>`.
// Never touches the portal's chain.

import { VerificationFailedError } from '../errors.js';
import type { AppPageRequest } from '../events/types.js';
import { serverEndpointOf, trustedBaseForServerEndpoint } from '../protocol/oauth-hosts.js';
import type { Logger } from '../logger.js';
import type { OAuthClient } from '../oauth/oauth-client.js';
import { userChain, type PortalRecord, type TokenStore } from '../store/token-store.js';
import { isHttpUrl } from '../coordinator/coordinator.js';

/** What remembering a user needs. */
export interface RememberUserContext {
  readonly store: TokenStore;
  readonly oauth: OAuthClient;
  readonly logger: Logger;
  readonly now: () => number;
  /** Normalised trusted OAuth bases; the first is used when the page names none of them. */
  readonly trustedHosts: readonly string[];
}

/**
 * Proves the page's chain by refreshing its refresh token at a trusted OAuth host (a forged or
 * spent one fails; a real one yields the authority's `member_id` and `user_id`), then stores the
 * fresh pair as that user's chain. The page's own access token dies with the refresh; the app's
 * front end gets a new one from the portal as usual.
 * @throws VerificationFailedError when the OAuth host refuses the chain or names another portal or no user.
 */
export async function rememberUser(context: RememberUserContext, page: AppPageRequest): Promise<PortalRecord> {
  if (page === null || typeof page !== 'object' || page.type !== 'app-page') {
    throw new TypeError('page must be a parsed app-page request (parseAppPageRequest)');
  }
  const { auth } = page;
  // The page's SERVER_ENDPOINT only selects an entry of the allow-list; it is never trusted itself.
  const base = trustedBaseForServerEndpoint(auth.serverEndpoint, context.trustedHosts) ?? context.trustedHosts[0];
  if (base === undefined) throw new TypeError('no trusted OAuth host is configured');
  let tokens;
  try {
    tokens = await context.oauth.refresh(base, auth.refreshToken);
  } catch (error) {
    throw new VerificationFailedError("The OAuth host refused the app page's chain", { cause: error, memberId: auth.memberId });
  }
  if (tokens.memberId !== auth.memberId) {
    throw new VerificationFailedError("The OAuth host named another portal for the app page's chain", { memberId: auth.memberId });
  }
  if (tokens.userId === null || tokens.userId < 1) {
    throw new VerificationFailedError("The OAuth host named no user for the app page's chain", { memberId: auth.memberId });
  }
  const portal = await context.store.get(auth.memberId);
  // The REST root comes from the OAuth host's answer or the portal's verified record, never the page.
  const clientEndpoint =
    tokens.clientEndpoint !== undefined && isHttpUrl(tokens.clientEndpoint) ? tokens.clientEndpoint : portal?.clientEndpoint;
  if (clientEndpoint === undefined) {
    throw new VerificationFailedError('No trusted REST root is known for the portal; install the app first', { memberId: auth.memberId });
  }
  const now = context.now();
  const chain = userChain(tokens.userId);
  const record = await context.store.upsert({
    memberId: auth.memberId,
    chain,
    domain: new URL(clientEndpoint).host,
    clientEndpoint,
    serverEndpoint: serverEndpointOf(base),
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken ?? auth.refreshToken,
    expires: tokens.expires,
    scope: tokens.scope ?? auth.scope,
    status: tokens.status ?? auth.status,
    userId: tokens.userId,
    applicationToken: portal?.applicationToken ?? null,
    state: 'active',
    revokedReason: null,
    installedAt: now,
    updatedAt: now,
    chainUpdatedAt: now,
    revokedAt: null,
  });
  context.logger.info({ memberId: auth.memberId, chain, version: record.version }, "stored a user's chain from the app page");
  return record;
}
