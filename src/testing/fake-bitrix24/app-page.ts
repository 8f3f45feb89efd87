// What reaches the app from a user's browser: the app-page (iframe) request, with a fresh chain of
// the user who opened it, and the authorization-code flow's consent (a code and the redirect).

import type { Ledger, PortalState } from './ledger.js';
import type { AppPageRequestOptions } from './options.js';
import type { FakeAppPageRequest, FakeAuthorization } from './types.js';
import { assertUserId, randomHex } from './util.js';

/** The app-page request of a user opening the app: a new chain for that user. */
export function appPageRequest(ledger: Ledger, memberId: string, options: AppPageRequestOptions): FakeAppPageRequest {
  const state = ledger.state(memberId);
  const userId = options.userId ?? state.adminUserId;
  assertUserId(userId, 'options.userId');
  const chain = ledger.mint(state, userId);
  const query = new URLSearchParams({
    DOMAIN: state.domain,
    PROTOCOL: '0',
    LANG: options.lang ?? 'en',
    APP_SID: randomHex(16),
  });
  const placementOptions =
    options.placementOptions === 'undefined' ? 'undefined' : JSON.stringify(options.placementOptions ?? {});
  const body = new URLSearchParams({
    AUTH_ID: chain.accessToken,
    AUTH_EXPIRES: String(chain.expiresIn),
    REFRESH_ID: chain.refreshToken,
    member_id: state.memberId,
    status: state.status,
    PLACEMENT: options.placement ?? 'DEFAULT',
    PLACEMENT_OPTIONS: placementOptions,
  });
  if (options.newerFields !== false) {
    body.set('SERVER_ENDPOINT', ledger.config.serverEndpoint);
    body.set('APPLICATION_TOKEN', state.applicationToken);
    body.set('APPLICATION_SCOPE', state.scope);
  }
  return { query: query.toString(), body: body.toString(), chain };
}

/** A user's consent: a single-use code, and where the browser goes with it. */
export function authorize(ledger: Ledger, state: PortalState, userId: number, stateParam: string | undefined): FakeAuthorization {
  const code = ledger.addCode(state, userId);
  const { redirectUri, url } = ledger.config;
  if (redirectUri === undefined) return { code, redirectUrl: null };
  const target = new URL(redirectUri);
  target.searchParams.set('code', code);
  if (stateParam !== undefined) target.searchParams.set('state', stateParam);
  target.searchParams.set('domain', state.domain);
  target.searchParams.set('member_id', state.memberId);
  target.searchParams.set('scope', state.scope);
  target.searchParams.set('server_domain', new URL(url).host);
  return { code, redirectUrl: target.toString() };
}
