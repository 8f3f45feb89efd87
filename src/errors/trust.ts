// The error of the send-time trust check: a request that would carry a secret (a refresh token with
// the app's credentials, an access token) to a host the configuration does not trust is not sent.

import { ErrorCode, PortalTokensError, type PortalTokensErrorOptions } from './base.js';

/**
 * A request that carries a secret was about to go to a host the configuration does not trust, and
 * was not sent: a refresh or `app.info` to an OAuth host outside `trustedOAuthHosts`, or a REST call
 * to a REST root the `restRoots` rule refuses. The stored record points somewhere it should not
 * (someone wrote to the store, or the configuration lacks a host); nothing is changed and the chain
 * is not revoked. `target` is the refused origin (scheme, host and port; never a path or query).
 */
export class UntrustedHostError extends PortalTokensError {
  readonly code = ErrorCode.UntrustedHost;
  /** `oauth` (a token-endpoint or `app.info` request) or `rest` (a call to the portal). */
  readonly kind: 'oauth' | 'rest';
  /** The origin that was refused, such as `https://evil.example:8443`, or `invalid URL`. */
  readonly target: string;
  constructor(kind: 'oauth' | 'rest', target: string, options: PortalTokensErrorOptions = {}) {
    const what = kind === 'oauth' ? 'an OAuth host outside trustedOAuthHosts' : 'a REST root the restRoots rule refuses';
    super(`Refused to send a token to ${target}: ${what}${options.memberId === undefined ? '' : ` (portal ${options.memberId})`}`, options);
    this.kind = kind;
    this.target = target;
  }
}
