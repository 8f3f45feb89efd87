// Which REST roots may receive a portal's tokens, checked as each request leaves. Bitrix24 cloud
// portals live on public hosts (`*.bitrix24.<zone>` or the customer's own domain) over https, and
// the REST root is `https://<domain>/rest/` (docs/protocol.md, "Domains, addresses and app statuses"); on-premise portals are
// run by the tenant, on any host, port and REST path, sometimes over plain http. The stored domain
// is the one the OAuth host confirmed at install (or a move confirmed by `app.info`).

import { isIP } from 'node:net';
import { UntrustedHostError } from '../errors/trust.js';

/** The portal a REST request is for, as the rule sees it. @inline */
export interface RestRootPortal {
  /** The portal's `member_id`. */
  readonly memberId: string;
  /** The portal's stored domain (`acme.bitrix24.com`, or `host:port` on premises). */
  readonly domain: string;
}

/**
 * Which REST roots may receive a portal's tokens (the pool option `restRoots`). The default sends a
 * token only over https, to the portal's own stored domain (host and port), and never to a
 * loopback, private, link-local or unspecified address or `localhost`, whatever the stored
 * `clientEndpoint` says. Host names are not resolved: an on-premise portal whose public name
 * resolves to a private address is reached.
 */
export interface RestRootRules {
  /**
   * Also send tokens to `http:` REST roots (an on-premise portal without TLS; its tokens then
   * travel in clear). @defaultValue false
   */
  readonly allowHttp?: boolean | undefined;
  /**
   * Also send tokens to loopback, private (RFC 1918, RFC 4193, 100.64/10), link-local and
   * unspecified addresses and to `localhost` (an on-premise portal inside your network, or a test
   * stand-in on 127.0.0.1). @defaultValue false
   */
  readonly allowPrivateAddresses?: boolean | undefined;
  /**
   * Replaces the "host is the portal's own domain" rule: return `true` when `root` (the request's
   * URL) may receive `portal`'s tokens. The scheme and address rules above still apply.
   * @defaultValue the root's host and port equal the portal's stored domain
   */
  readonly allowHost?: ((root: URL, portal: RestRootPortal) => boolean) | undefined;
}

/** The rules with their defaults, checked once. */
export interface ResolvedRestRootRules {
  readonly allowHttp: boolean;
  readonly allowPrivateAddresses: boolean;
  readonly allowHost: (root: URL, portal: RestRootPortal) => boolean;
}

/** Whether `root`'s host and port are the portal's stored domain (the default `allowHost`). */
export function isPortalDomain(root: URL, portal: RestRootPortal): boolean {
  let domain: URL;
  try {
    domain = new URL(`${root.protocol}//${portal.domain}/`);
  } catch {
    return false;
  }
  return domain.host === root.host;
}

/** Checks the `restRoots` option. @throws TypeError naming `argument`. */
export function resolveRestRootRules(rules: RestRootRules | undefined, argument = 'restRoots'): ResolvedRestRootRules {
  if (rules !== undefined && (rules === null || typeof rules !== 'object')) throw new TypeError(`${argument} must be an object`);
  const { allowHttp = false, allowPrivateAddresses = false, allowHost = isPortalDomain } = rules ?? {};
  if (typeof allowHttp !== 'boolean') throw new TypeError(`${argument}.allowHttp must be a boolean`);
  if (typeof allowPrivateAddresses !== 'boolean') throw new TypeError(`${argument}.allowPrivateAddresses must be a boolean`);
  if (typeof allowHost !== 'function') throw new TypeError(`${argument}.allowHost must be a function`);
  return { allowHttp, allowPrivateAddresses, allowHost };
}

function ipv4Private(address: string): boolean {
  const [a = 0, b = 0] = address.split('.').map(Number);
  return (
    a === 0 || a === 10 || a === 127 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168)
  );
}

function ipv6Private(address: string): boolean {
  const a = address.toLowerCase();
  if (a === '::' || a === '::1') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped !== null) return ipv4Private(mapped[1]!);
  if (/^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(a)) return true; // a mapped IPv4 written in hex: refuse
  return /^f[cd]/.test(a) || /^fe[89ab]/.test(a);
}

/** Whether a URL host names a loopback, private, link-local or unspecified address, or localhost. */
export function isPrivateHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  const family = isIP(host);
  if (family === 4) return ipv4Private(host);
  if (family === 6) return ipv6Private(host);
  return false;
}

/**
 * Checks the URL a request carrying `portal`'s token is about to be sent to.
 * @throws UntrustedHostError when the rules refuse it (the request is not sent).
 */
export function checkRestRoot(url: string | undefined, portal: RestRootPortal, rules: ResolvedRestRootRules): void {
  let root: URL | undefined;
  try {
    root = url === undefined ? undefined : new URL(url);
  } catch {
    root = undefined;
  }
  const refuse = (): never => {
    throw new UntrustedHostError('rest', root === undefined ? 'invalid URL' : root.origin, { memberId: portal.memberId });
  };
  if (root === undefined || root.username !== '' || root.password !== '') return refuse();
  if (root.protocol !== 'https:' && !(rules.allowHttp && root.protocol === 'http:')) return refuse();
  if (!rules.allowPrivateAddresses && isPrivateHost(root.hostname)) return refuse();
  if (!rules.allowHost(root, portal)) refuse();
}
