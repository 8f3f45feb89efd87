// parseAppPageRequest: the app-page (iframe) request Bitrix24 POSTs when a user opens the app, in; the
// current user's chain and the placement, typed and validated, out. Pure, like the lifecycle parser.

import { GLOBAL_OAUTH_HOST, serverEndpointOf } from '../protocol/oauth-hosts.js';
import { portalRestEndpoint } from '../protocol/portal.js';
import { toFieldTree, toPlainData, jsonToNode, type FieldMap } from './field-tree.js';
import { FieldReader } from './fields.js';
import {
  DEFAULT_EXPIRES_IN,
  LIFETIME_RULE,
  nowSeconds,
  resolveOptions,
  type EventBody,
  type ParseEventOptions,
  type ResolvedOptions,
} from './options.js';
import type { AppPageRequest, PortalAuth } from './types.js';

/**
 * The parts of an app-page (iframe) request that {@link parseAppPageRequest} reads.
 * @inline
 */
export interface AppPageRequestInput {
  /**
   * The query string: a `URLSearchParams`, an object (`req.query`), or a string (with or without the
   * leading `?`, or a whole request target such as `/app?DOMAIN=...`).
   */
  query?: string | URLSearchParams | Readonly<Record<string, unknown>> | undefined;
  /** The POST body, in any `EventBody` form. */
  body?: EventBody | undefined;
}

const APP_PAGE = 'App page request';
/** Used when the portal is too old to send `SERVER_ENDPOINT`. Not trusted until verified. */
const DEFAULT_SERVER_ENDPOINT = serverEndpointOf(GLOBAL_OAUTH_HOST);

/** Query-string input into a tree: accepts `?a=b`, `a=b`, a request target, URLSearchParams or an object. */
function queryTree(query: AppPageRequestInput['query'], options: ResolvedOptions): FieldMap {
  if (query === undefined) return new Map();
  let input: unknown = query;
  if (typeof query === 'string') {
    const mark = query.indexOf('?');
    const isTarget = query.startsWith('/') || /^[a-z][a-z0-9+.-]*:\/\//i.test(query);
    input = isTarget ? (mark === -1 ? '' : query.slice(mark + 1)) : query.replace(/^\?/, '');
  }
  // Always form, whatever it looks like: a query string is never JSON.
  return toFieldTree(input, {
    limits: options.limits,
    subject: APP_PAGE,
    field: 'query',
    contentType: 'application/x-www-form-urlencoded',
  });
}

/** `PLACEMENT_OPTIONS`: a JSON string (usually), an already-parsed object, or `undefined`. */
function readPlacementOptions(reader: FieldReader, options: ResolvedOptions): unknown {
  const path = ['PLACEMENT_OPTIONS'];
  const node = reader.node(path, 1);
  if (node === undefined || node === null || node === '' || node === 'undefined') return null;
  if (typeof node === 'string') {
    const parsed = jsonToNode(node, { limits: options.limits, subject: APP_PAGE, field: 'PLACEMENT_OPTIONS' });
    return toPlainData(parsed) ?? null;
  }
  const plain = toPlainData(node);
  if (plain === undefined) throw reader.fail(path, 'duplicate', 'has a key that appears more than once');
  return plain;
}

/**
 * Parses and validates the app-page (iframe) request: what Bitrix24 POSTs to the app's handler URL
 * when a user opens the app. It carries **that user's** chain, not the installer's: store it only
 * when that is what you want.
 *
 * Where fields are read (each is looked up in its documented place, then in the other; present in
 * both with different values is rejected as `duplicate`):
 * - query: `DOMAIN` (required, host with optional `:port`), `PROTOCOL` (`1` https, `0` http; https
 *   when absent), `LANG`, `APP_SID`;
 * - body: `AUTH_ID` and `REFRESH_ID` (required tokens), `AUTH_EXPIRES` (the token's lifetime in
 *   **seconds**; `expires = now + AUTH_EXPIRES`, 3600 when absent), `member_id` (required),
 *   `status` (required letter), `PLACEMENT`, `PLACEMENT_OPTIONS`, and from newer portals
 *   `SERVER_ENDPOINT` (default `https://oauth.bitrix.info/rest/`), `APPLICATION_TOKEN` (else `null`),
 *   `APPLICATION_SCOPE` (else empty scope).
 *
 * `clientEndpoint` is `http(s)://DOMAIN/rest/`; `userId` is `null` (the request does not say).
 * `PLACEMENT_OPTIONS` is decoded from JSON; absent, empty or the literal `undefined` give `null`;
 * text that is not valid JSON is rejected (reason `syntax`) rather than silently dropped. Decoded
 * objects have a null prototype and never keep `__proto__`, `constructor` or `prototype` keys.
 *
 * @param request - The query and the body of the request.
 * @param options - Content type of the body, size limits (applied to query and body each) and clock.
 * @returns A frozen {@link AppPageRequest}.
 * @throws {@link InvalidEventError} as {@link parseInstallEvent} does, naming fields as Bitrix24
 *   spells them (`AUTH_EXPIRES`, `DOMAIN`).
 * @throws `TypeError` when `options` are invalid.
 * @example
 * ```ts
 * app.post('/app', express.urlencoded({ extended: true }), (req, res) => {
 *   const page = parseAppPageRequest({ query: req.query, body: req.body });
 *   res.render('app', { domain: page.auth.domain, placement: page.placement });
 * });
 * ```
 */
export function parseAppPageRequest(request: AppPageRequestInput, options?: ParseEventOptions): AppPageRequest {
  const resolved = resolveOptions(options);
  if (request === null || typeof request !== 'object') {
    throw new TypeError('parseAppPageRequest expects { query, body }');
  }
  const query = queryTree(request.query, resolved);
  const body =
    request.body === undefined
      ? new Map()
      : toFieldTree(request.body, {
          limits: resolved.limits,
          subject: APP_PAGE,
          field: 'body',
          contentType: resolved.contentType,
        });
  const QUERY = 0;
  const BODY = 1;
  const reader = new FieldReader(APP_PAGE, [query, body]);
  reader.adoptMemberId(['member_id'], BODY);

  const accessToken = reader.token(['AUTH_ID'], BODY);
  const refreshToken = reader.token(['REFRESH_ID'], BODY);
  const expiresIn = reader.integer(['AUTH_EXPIRES'], LIFETIME_RULE, BODY) ?? DEFAULT_EXPIRES_IN;
  const domain = reader.domain(['DOMAIN'], QUERY);
  const protocol = reader.scalar(['PROTOCOL'], QUERY);
  if (protocol !== undefined && protocol !== '1' && protocol !== '0' && protocol !== 1 && protocol !== 0) {
    throw reader.fail(['PROTOCOL'], 'format', 'must be 1 (https) or 0 (http)');
  }
  const scheme = protocol === '0' || protocol === 0 ? 'http' : 'https';
  const serverEndpointText = reader.text(['SERVER_ENDPOINT'], BODY);
  const auth: PortalAuth = {
    accessToken,
    refreshToken,
    expires: nowSeconds(resolved) + expiresIn,
    expiresIn,
    scope: reader.text(['APPLICATION_SCOPE'], BODY) ?? '',
    domain,
    // Built from a validated host; checked anyway so one rule covers every endpoint.
    clientEndpoint: reader.endpointFrom(['DOMAIN'], portalRestEndpoint(domain, scheme === 'https')),
    serverEndpoint:
      serverEndpointText === undefined ? DEFAULT_SERVER_ENDPOINT : reader.endpoint(['SERVER_ENDPOINT'], BODY),
    status: reader.status(['status'], BODY),
    memberId: reader.memberId(['member_id'], BODY),
    userId: null,
    applicationToken: reader.optionalToken(['APPLICATION_TOKEN'], BODY),
  };
  const page: AppPageRequest = {
    type: 'app-page',
    auth: Object.freeze(auth),
    placement: reader.label(['PLACEMENT'], 256, BODY),
    placementOptions: readPlacementOptions(reader, resolved),
    lang: reader.label(['LANG'], 32, QUERY),
    appSid: reader.label(['APP_SID'], 256, QUERY),
  };
  return Object.freeze(page);
}
