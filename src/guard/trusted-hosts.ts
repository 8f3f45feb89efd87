// The OAuth hosts' side of the rule "a request that carries a secret goes only to a host the
// configuration trusts": the check made as a refresh or an app.info leaves. The facts it compares
// (bases, endpoints) are in src/protocol/oauth-hosts.ts; the REST roots' side is rest-roots.ts.

import { UntrustedHostError } from '../errors/trust.js';
import { originOf, trustedBaseForServerEndpoint } from '../protocol/oauth-hosts.js';

/**
 * The trusted OAuth base of a stored `server_endpoint`, checked at the moment a secret is about to
 * be sent there (a refresh, an `app.info`): whatever the store says, only a host of `trusted` ever
 * receives a refresh token, an access token or the app's credentials.
 * @throws UntrustedHostError when `serverEndpoint` is not at a trusted base.
 */
export function trustedOAuthBaseOf(serverEndpoint: string, trusted: readonly string[], memberId?: string): string {
  const base = trustedBaseForServerEndpoint(serverEndpoint, trusted);
  if (base === undefined) throw new UntrustedHostError('oauth', originOf(serverEndpoint), { memberId });
  return base;
}
