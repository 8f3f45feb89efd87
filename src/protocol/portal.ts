// Facts about a portal's own addresses (docs/protocol.md, "Domains, addresses and app statuses"):
// its REST root derives from its domain when nothing better is known; the domain is mutable, the
// member_id is the key.

/**
 * The REST root of a portal served at `domain` (a host with an optional `:port`):
 * `https://<domain>/rest/`, or `http://` for an on-premise portal on plain http.
 */
export function portalRestEndpoint(domain: string, secure = true): string {
  return `${secure ? 'https' : 'http'}://${domain}/rest/`;
}
