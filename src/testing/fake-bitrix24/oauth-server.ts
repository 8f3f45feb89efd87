// The OAuth host of the stand-in: `/oauth/token/` (refresh and code grants, single-use refresh
// tokens, client credentials, injected failures) and its `app.info`.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from './http.js';
import type { Ledger, PortalState } from './ledger.js';
import type { StandIn } from './runtime.js';
import type { FakeChain } from './types.js';
import { str, type Params } from './util.js';

/** A token endpoint answer carrying a chain. */
function tokenResponse(ledger: Ledger, state: PortalState, chain: FakeChain): Record<string, unknown> {
  return {
    access_token: chain.accessToken,
    expires: chain.expires,
    expires_in: chain.expiresIn,
    scope: state.scope,
    domain: new URL(ledger.config.url).host,
    server_endpoint: ledger.config.serverEndpoint,
    status: state.status,
    client_endpoint: ledger.clientEndpoint(state),
    member_id: state.memberId,
    user_id: chain.userId,
    refresh_token: chain.refreshToken,
  };
}

/** `/oauth/token/`: refresh-token and authorization-code grants, with injected failures and delays. */
export async function handleToken(s: StandIn, req: IncomingMessage, res: ServerResponse, params: Params): Promise<void> {
  const { ledger, stats, runtime } = s;
  const grant = str(params['grant_type']);
  const errors =
    grant === 'refresh_token' ? stats.refreshErrors : grant === 'authorization_code' ? stats.codeErrors : null;
  if (grant === 'refresh_token') stats.refreshRequests += 1;
  else if (grant === 'authorization_code') stats.codeExchanges += 1;

  const taken = runtime.takeFailure();
  const dropAfterRotate = taken !== null && 'mode' in taken && taken.mode === 'rotate-and-drop';
  const failure = dropAfterRotate ? null : taken;
  if (dropAfterRotate) stats.oauthFailuresInjected += 1;
  if (failure !== null) {
    stats.oauthFailuresInjected += 1;
    if ('status' in failure) {
      const body = `<html><body><h1>${failure.status} Service Unavailable</h1></body></html>`;
      res.writeHead(failure.status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    } else if (failure.mode === 'reset') {
      req.socket.destroy();
    }
    // 'hang': never answer; close() tears the connection down.
    return;
  }
  if (runtime.oauthDelayMs > 0) {
    await runtime.sleep(runtime.oauthDelayMs);
    if (runtime.closed) return;
  }

  const refuse = (status: number, error: string, description: string): void => {
    if (errors !== null) errors[error] = (errors[error] ?? 0) + 1;
    else stats.badTokenRequests += 1;
    sendJson(res, status, { error, error_description: description });
  };

  if (errors === null) {
    refuse(400, 'invalid_request', 'grant_type must be refresh_token or authorization_code');
    return;
  }
  if (str(params['client_id']) !== ledger.config.clientId || str(params['client_secret']) !== ledger.config.clientSecret) {
    refuse(401, 'invalid_client', 'Invalid client credentials');
    return;
  }

  if (grant === 'refresh_token') {
    const token = str(params['refresh_token']);
    if (token === undefined || token === '') {
      refuse(400, 'invalid_request', 'refresh_token is required');
      return;
    }
    const record = ledger.refresh(token);
    if (record === undefined) {
      refuse(400, 'invalid_grant', 'Invalid refresh token');
      return;
    }
    if (record.spent) {
      stats.refreshReuse += 1;
      refuse(400, 'invalid_grant', 'The refresh token has already been used');
      return;
    }
    const state = ledger.find(record.memberId);
    if (state?.installed !== true) {
      refuse(401, 'NOT_INSTALLED', 'Application is not installed on the portal');
      return;
    }
    if (record.revokedWith !== null) {
      refuse(400, record.revokedWith, 'The token chain was revoked');
      return;
    }
    ledger.spend(record);
    const chain = ledger.mint(state, record.userId);
    if (dropAfterRotate) {
      req.socket.destroy();
      return;
    }
    stats.refreshSuccess += 1;
    sendJson(res, 200, tokenResponse(ledger, state, chain));
    return;
  }

  const code = str(params['code']);
  if (code === undefined || code === '') {
    refuse(400, 'invalid_request', 'code is required');
    return;
  }
  const record = ledger.code(code);
  if (record === undefined || record.used || record.clientId !== ledger.config.clientId) {
    refuse(400, 'invalid_grant', 'Invalid authorization code');
    return;
  }
  record.used = true;
  if (ledger.config.now() >= record.expiresMs) {
    refuse(400, 'invalid_grant', 'The authorization code has expired');
    return;
  }
  const state = ledger.find(record.memberId);
  if (state?.installed !== true) {
    refuse(401, 'NOT_INSTALLED', 'Application is not installed on the portal');
    return;
  }
  const chain = ledger.mint(state, record.userId);
  stats.codeSuccess += 1;
  sendJson(res, 200, tokenResponse(ledger, state, chain));
}

/** The OAuth host's `app.info`: what a live access token belongs to. */
export function handleOAuthAppInfo(s: StandIn, res: ServerResponse, params: Params): void {
  const { ledger, stats } = s;
  stats.appInfoCalls += 1;
  const token = str(params['auth']);
  const record = token === undefined ? undefined : ledger.access(token);
  if (token === undefined || token === '') {
    sendJson(res, 401, { error: 'NO_AUTH_FOUND', error_description: 'Wrong authorization data' });
    return;
  }
  const verdict = record === undefined ? 'dead' : ledger.judgeAccess(record);
  if (verdict === 'expired') {
    sendJson(res, 401, { error: 'expired_token', error_description: 'The access token provided has expired.' });
    return;
  }
  const state = record === undefined ? undefined : ledger.find(record.memberId);
  if (verdict !== 'ok' || state === undefined || record === undefined) {
    sendJson(res, 401, { error: 'invalid_token', error_description: 'The access token provided is invalid.' });
    return;
  }
  sendJson(res, 200, {
    result: {
      scope: state.scope,
      client_id: ledger.config.clientId,
      expires: Math.floor(record.expiresMs / 1000),
      user_id: record.userId,
      install: {
        installed: true,
        version: state.appVersion,
        status: state.status,
        member_id: state.memberId,
        domain: state.domain,
        client_endpoint: ledger.clientEndpoint(state),
        server_endpoint: ledger.config.serverEndpoint,
      },
    },
  });
}
