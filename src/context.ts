// The narrow context the lifecycle handler and the authorization flow depend on: where records live,
// the OAuth host client, the logger, the clock, and whom to tell after a write. `PortalClientPool`
// implements it; a test or a custom setup can pass any object of this shape.

import type { B24OAuth } from '@bitrix24/b24jssdk';
import type { Clock } from './clock.js';
import { InvalidOptionsError } from './errors/options.js';
import type { Logger } from './logger.js';
import type { AppInfo, TokenResponse } from './protocol/oauth-answers.js';
import type { ChainId, TokenStore } from './store/token-store.js';

/**
 * A lifecycle change the lifecycle handler or the authorization flow reports after writing the store.
 * @inline
 */
export interface LifecycleChange {
  /** What happened. */
  readonly type: 'installed' | 'updated' | 'uninstalled' | 'authorized';
  /** The portal concerned. */
  readonly memberId: string;
}

/**
 * The calls the lifecycle handler and the authorization flow make to an OAuth host. The pool's
 * OAuth client implements it; a test can script it.
 * @inline
 */
export interface OAuthHostClient {
  /** The app's `client_id`, which `app.info` must name for a chain to be this app's. */
  readonly clientId: string;
  /** Asks the OAuth host at `oauthBase` which app and portal `accessToken` belongs to. */
  appInfo(oauthBase: string, accessToken: string): Promise<AppInfo>;
  /** Exchanges an authorization code (it lives 30 s) at `oauthBase` for a first pair. */
  exchangeCode(oauthBase: string, code: string): Promise<TokenResponse>;
  /**
   * Refreshes a chain at `oauthBase`: the strongest proof a received chain is genuine (a forged or
   * spent refresh token fails; a real one yields the authority's `member_id`, `user_id` and
   * endpoints, even after the received access token expired).
   */
  refresh(oauthBase: string, refreshToken: string): Promise<TokenResponse>;
  /** Asks the portal at a trusted `clientEndpoint` whether the token's user is an administrator. */
  userAdmin(clientEndpoint: string, accessToken: string): Promise<boolean>;
}

/**
 * What the OAuth host says about a stored chain: it still works (`alive`: the app is installed),
 * it is refused for good (`dead`), or the host could not be asked (`unreachable`).
 * @inline
 */
export type ChainStatus = 'alive' | 'dead' | 'unreachable';

/**
 * What the lifecycle handler and the authorization flow need from their surroundings. Pass your
 * `PortalClientPool` (it implements this); nothing here hands out clients.
 * @inline
 */
export interface PortalTokensContext {
  /** Where portals' records live. */
  readonly store: TokenStore;
  /** The app's client for the OAuth hosts (verification and code exchange). */
  readonly oauth: OAuthHostClient;
  /** Where to log; only identifiers and outcomes, never token values. */
  readonly logger: Logger;
  /** The clock every timestamp and wait uses. */
  readonly clock: Clock;
  /**
   * Called after each write the handler or the flow made: the pool drops the portal's cached
   * client and emits the matching event. A throw is logged and does not undo the write.
   */
  notify(change: LifecycleChange): void;
  /**
   * Asks the OAuth host whether the portal's stored chain still works, refreshing it (once, for
   * every worker) when its access token no longer answers. A `PortalClientPool` implements it with
   * its refresh coordinator; without it the handler asks `app.info` with the stored access token.
   */
  confirmChain?(memberId: string, chain?: ChainId): Promise<ChainStatus>;
}

/**
 * Checks that `value` looks like a `PortalTokensContext`.
 * @throws TypeError naming `argument` otherwise.
 */
export function assertContext(value: unknown, argument: string): asserts value is PortalTokensContext {
  const context = value as Partial<PortalTokensContext> | null;
  if (
    context === null ||
    typeof context !== 'object' ||
    context.store === undefined ||
    context.oauth === undefined ||
    context.logger === undefined ||
    context.clock === undefined ||
    typeof context.clock.now !== 'function' ||
    typeof context.clock.sleep !== 'function' ||
    typeof context.notify !== 'function'
  ) {
    throw new InvalidOptionsError(argument.replace(/^options\./, ''), `${argument} must be a PortalClientPool (store, oauth, logger, clock, notify)`);
  }
}

/**
 * What the REST event handler needs: a `PortalTokensContext` that also hands out the
 * portal's pooled client. Pass your `PortalClientPool` (it implements this).
 * @inline
 */
export interface EventHandlerContext extends PortalTokensContext {
  /** The portal's own client (its installer's chain), refreshed through the pool's coordinator. */
  clientFor(memberId: string): Promise<B24OAuth>;
}

/**
 * Checks that `value` looks like an `EventHandlerContext`.
 * @throws TypeError naming `argument` otherwise.
 */
export function assertEventContext(value: unknown, argument: string): asserts value is EventHandlerContext {
  assertContext(value, argument);
  if (typeof (value as Partial<EventHandlerContext>).clientFor !== 'function') {
    throw new TypeError(`${argument} must be a PortalClientPool (store, oauth, logger, clock, notify, clientFor)`);
  }
}
