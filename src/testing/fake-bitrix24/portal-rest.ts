// Portal REST of the stand-in: routing under `/portals/<domain>/`, judging the access token on
// arrival, the v2 and v3 error shapes, the 302 of a renamed portal and the consent page.

import type { ServerResponse } from 'node:http';
import { authorize } from './app-page.js';
import { sendJson } from './http.js';
import type { PortalState } from './ledger.js';
import { callMethod, timeBlock } from './rest-methods.js';
import type { StandIn } from './runtime.js';
import { str, type Params } from './util.js';

/** Everything under `/portals/<domain>/`: REST v2 and v3, the consent page, a renamed portal's 302. */
export async function handlePortal(
  s: StandIn,
  res: ServerResponse,
  domain: string,
  tail: string,
  requestUrl: URL,
  params: Params,
  httpMethod: string,
): Promise<void> {
  const { ledger, stats } = s;
  const memberId = ledger.byDomain(domain);
  const movedTo = memberId === undefined ? ledger.movedFrom(domain) : undefined;
  if (movedTo !== undefined) {
    const state = ledger.state(movedTo);
    const query = new URLSearchParams(requestUrl.searchParams);
    query.delete('auth');
    const search = query.toString();
    const location = `${ledger.config.url}/portals/${state.domain}/${tail}${search === '' ? '' : `?${search}`}`;
    if (tail.startsWith('rest/')) stats.rest.redirects += 1;
    res.writeHead(302, { location, 'content-length': 0 });
    res.end();
    return;
  }
  const state = memberId === undefined ? undefined : ledger.find(memberId);

  if (/^oauth\/authorize\/?$/.test(tail)) {
    handleAuthorize(s, res, state, params, httpMethod);
    return;
  }
  const restRoute = /^rest\/(api\/)?(.+?)(\.json)?\/?$/.exec(tail);
  if (restRoute === null) {
    sendJson(res, 404, { error: 'NOT_FOUND', error_description: 'No such route on the portal' });
    return;
  }
  const version = restRoute[1] === undefined ? 'v2' : 'v3';
  const methodName = (restRoute[2] ?? '').toLowerCase();
  stats.restByMethod[methodName] = (stats.restByMethod[methodName] ?? 0) + 1;
  const answer = (status: number, body: unknown): Promise<void> => answerRest(s, res, status, body);
  const fail = (status: number, code: string, description: string): Promise<void> => {
    if (code === 'expired_token') stats.rest.expiredToken += 1;
    else if (code === 'invalid_token') stats.rest.invalidToken += 1;
    else stats.rest.otherErrors += 1;
    return answer(
      status,
      version === 'v3' ? { error: { code, message: description } } : { error: code, error_description: description },
    );
  };

  if (state === undefined) {
    await fail(404, 'PORTAL_NOT_FOUND', 'Portal not found');
    return;
  }
  // The documented leaky bucket, counted per portal before anything else is judged.
  if (!s.runtime.admit(state.memberId)) {
    stats.rest.queryLimitExceeded += 1;
    await answer(
      503,
      version === 'v3'
        ? { error: { code: 'QUERY_LIMIT_EXCEEDED', message: 'Too many requests' } }
        : { error: 'QUERY_LIMIT_EXCEEDED', error_description: 'Too many requests' },
    );
    return;
  }
  // A method whose operating time is spent is blocked for the whole portal.
  const refusal = s.runtime.operatingBlocks.refusal(state.memberId, methodName, version);
  if (refusal !== undefined) {
    stats.rest.operationTimeLimit += 1;
    await answer(429, refusal);
    return;
  }
  const token = str(params['auth']);
  if (token === undefined || token === '') {
    await fail(401, 'NO_AUTH_FOUND', 'Wrong authorization data');
    return;
  }
  const record = ledger.access(token);
  if (record === undefined || record.memberId !== state.memberId) {
    await fail(401, 'invalid_token', 'The access token provided is invalid.');
    return;
  }
  switch (ledger.judgeAccess(record)) {
    case 'not_installed':
      await fail(401, 'ERROR_OAUTH', 'Application not installed');
      return;
    case 'dead':
      await fail(401, 'invalid_token', 'The access token provided is invalid.');
      return;
    case 'expired':
      await fail(401, 'expired_token', 'The access token provided has expired.');
      return;
    case 'ok':
      break;
  }

  const callParams: Params = Object.assign(Object.create(null) as Params, params);
  delete callParams['auth'];
  const outcome = callMethod(s, state, record.userId, methodName, version, callParams);
  if ('error' in outcome) {
    await fail(outcome.status ?? 400, outcome.error, outcome.description ?? outcome.error);
    return;
  }
  stats.rest.ok += 1;
  const time = timeBlock(ledger.config.now);
  const operating = s.runtime.operating.get(methodName);
  await answer(200, { result: outcome.result, time: operating === undefined ? time : { ...time, operating } });
}

/** Answers after the configured REST delay (the token was judged on arrival). */
async function answerRest(s: StandIn, res: ServerResponse, status: number, body: unknown): Promise<void> {
  const { runtime } = s;
  if (runtime.restDelayMs > 0) {
    await runtime.sleep(runtime.restDelayMs);
    if (runtime.closed) return;
  }
  sendJson(res, status, body);
}

/** `GET /oauth/authorize/` of a portal: the installer consents at once and is sent to the redirect URI. */
function handleAuthorize(s: StandIn, res: ServerResponse, state: PortalState | undefined, params: Params, httpMethod: string): void {
  const { ledger } = s;
  if (httpMethod !== 'GET') {
    sendJson(res, 405, { error: 'METHOD_NOT_ALLOWED', error_description: 'Use GET' });
    return;
  }
  if (state === undefined) {
    sendJson(res, 404, { error: 'PORTAL_NOT_FOUND', error_description: 'Portal not found' });
    return;
  }
  if (str(params['client_id']) !== ledger.config.clientId) {
    sendJson(res, 400, { error: 'invalid_client', error_description: 'Unknown client_id' });
    return;
  }
  if (!state.installed) {
    sendJson(res, 400, { error: 'NOT_INSTALLED', error_description: 'Application is not installed on the portal' });
    return;
  }
  if (ledger.config.redirectUri === undefined) {
    sendJson(res, 400, { error: 'invalid_request', error_description: 'The stand-in has no redirectUri configured' });
    return;
  }
  const { redirectUrl } = authorize(ledger, state, state.adminUserId, str(params['state']));
  res.writeHead(302, { location: redirectUrl ?? '', 'content-length': 0 });
  res.end();
}
