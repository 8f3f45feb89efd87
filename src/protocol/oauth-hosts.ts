// Bitrix24's OAuth hosts and their endpoints: the allow-list (the only places tokens are verified at
// and codes exchanged at) and the URL arithmetic between a host, a `server_endpoint` and an endpoint.
// A payload's own `server_endpoint` or a redirect's `server_domain` only ever selects an entry of it.


/** The global OAuth host. */
export const GLOBAL_OAUTH_HOST = 'https://oauth.bitrix.info';

/**
 * The OAuth hosts Bitrix24 runs: the global one and the Russian region's.
 * Tests and on-premise setups pass their own list (`trustedOAuthHosts`).
 */
export const DEFAULT_TRUSTED_OAUTH_HOSTS: readonly string[] = Object.freeze([GLOBAL_OAUTH_HOST, 'https://oauth.bitrix24.tech']);

/** An OAuth base (`origin` + optional path prefix, no trailing slash) from a host or `server_endpoint` URL. */
function baseOf(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username !== '' || url.password !== '') {
    return undefined;
  }
  return `${url.origin}${stripRest(url.pathname)}`;
}

/** `/prefix/rest/` to `/prefix`. */
function stripRest(pathname: string): string {
  return pathname.replace(/\/rest\/?$/, '').replace(/\/+$/, '');
}

/**
 * Checks and normalises a list of trusted OAuth hosts to bases such as `https://oauth.bitrix.info`
 * (entries may be given with or without a trailing `/` or `/rest/`).
 * @throws TypeError naming `argument` when the list is empty or an entry is not an http(s) URL.
 */
export function normalizeTrustedHosts(hosts: readonly string[] | undefined, argument: string): readonly string[] {
  const list = hosts ?? DEFAULT_TRUSTED_OAUTH_HOSTS;
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError(`${argument} must be a non-empty array of OAuth host URLs`);
  }
  return Object.freeze(
    list.map((entry: unknown, index) => {
      const base = typeof entry === 'string' ? baseOf(entry) : undefined;
      if (base === undefined) throw new TypeError(`${argument}[${index}] is not an http(s) URL`);
      return base;
    }),
  );
}

/**
 * The trusted base a `server_endpoint` points at, or `undefined` when it points anywhere else.
 * The comparison is on scheme, host, port and path prefix, so `https://oauth.bitrix.info.evil/rest/`
 * and `http://oauth.bitrix.info/rest/` do not match `https://oauth.bitrix.info`.
 */
export function trustedBaseForServerEndpoint(serverEndpoint: string, trusted: readonly string[]): string | undefined {
  const base = baseOf(serverEndpoint);
  return base === undefined ? undefined : trusted.find((candidate) => candidate === base);
}

/**
 * The trusted base whose host (`name[:port]`) is `serverDomain`, as the authorization redirect
 * names it (`server_domain=oauth.bitrix.info`), or `undefined` when none is.
 */
export function trustedBaseForServerDomain(serverDomain: string, trusted: readonly string[]): string | undefined {
  const wanted = serverDomain.trim().toLowerCase();
  if (wanted === '') return undefined;
  return trusted.find((candidate) => new URL(candidate).host === wanted);
}

/** The `server_endpoint` stored for a portal served by the OAuth `base`: `<base>/rest/`. */
export function serverEndpointOf(base: string): string {
  return `${base}/rest/`;
}

/**
 * The OAuth host's origin (plus any path prefix) from a `server_endpoint` such as
 * `https://oauth.bitrix.info/rest/`: the token endpoint is `<that>/oauth/token/`.
 * @throws TypeError when `serverEndpoint` is not an http(s) URL.
 */
export function oauthBaseFromServerEndpoint(serverEndpoint: string): string {
  let url: URL;
  try {
    url = new URL(serverEndpoint);
  } catch {
    throw new TypeError('serverEndpoint is not a valid URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError('serverEndpoint must be an http(s) URL');
  }
  return `${url.origin}${stripRest(url.pathname)}`;
}

/** The token endpoint (refresh and code exchange) of the OAuth `base`. */
export function tokenEndpointOf(base: string): string {
  return `${base}/oauth/token/`;
}

/** The OAuth host's `app.info` method at `base`. */
export function appInfoEndpointOf(base: string): string {
  return `${base}/rest/app.info`;
}


/** The origin of a URL for a message (never its path, query or user-info). */
export function originOf(value: string): string {
  try {
    const url = new URL(value);
    return url.origin === 'null' ? `${url.protocol}` : url.origin;
  } catch {
    return 'invalid URL';
  }
}
