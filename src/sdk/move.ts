// A renamed portal answers a REST call with 3xx to its new address. Following it as a GET would
// lose the POST body and its token, so the pool re-sends the call itself; this decides where to.
// Pure: no I/O, no SDK.

/** Where a moved portal's call goes, and the new REST root to store. */
export interface PortalMove {
  /** The URL to re-send the call to. */
  readonly url: string;
  /** The portal's new REST root, such as `https://new.bitrix24.com/rest/`. */
  readonly root: string;
  /** The new root's host (with a port, if any): the portal's new domain. */
  readonly host: string;
}

/**
 * Derives a portal's new REST root from a 3xx answer to `requestUrl`, a call under `restRoot`.
 * Returns `undefined` when the move is not acceptable: not http(s), a downgrade from https, or
 * not the same method under another REST root.
 */
export function portalMove(restRoot: string, requestUrl: string | undefined, location: string): PortalMove | undefined {
  if (requestUrl === undefined) return undefined;
  let target: URL;
  let from: URL;
  let root: URL;
  try {
    from = new URL(requestUrl);
    target = new URL(location, from);
    root = new URL(restRoot);
  } catch {
    return undefined;
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') return undefined;
  if (from.protocol === 'https:' && target.protocol !== 'https:') return undefined;
  // The method part of the request (after the REST root), e.g. `profile` or `api/profile`.
  const tail = collapse(from.pathname.slice(root.pathname.length).replace(/^\/+/, ''));
  const path = collapse(target.pathname);
  if (tail === '' || !path.endsWith(`/${tail}`)) return undefined;
  return { url: target.href, root: `${target.origin}${path.slice(0, path.length - tail.length)}`, host: target.host };
}

function collapse(path: string): string {
  return path.replace(/\/{2,}/g, '/');
}
