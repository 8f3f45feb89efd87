// Masking store URLs for anything the tool prints: every credential-bearing part (the password of
// the user-info, whatever characters it holds, and any credential query parameter) becomes `***`.
// Written for URLs that no parser reads as meant: a password with an unencoded `@`, `/` or `?`.

const MASK = '***';
/** Query parameters that carry credentials (libpq's `password`, `sslpassword`, Redis' `password`, tokens). */
const CREDENTIAL_PARAM = /pass|pwd|secret|token|auth|credential/i;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
/** A plain user name: nothing that belongs to a path, a query or a password. */
const PLAIN_USER = /^[^/?#&=:]*$/;

interface UrlParts {
  readonly scheme: string;
  /** `//` when the URL has an authority. */
  readonly slashes: string;
  /** Everything before the last `@` (the user-info, as far as it can be told), or `undefined`. */
  readonly userInfo: string | undefined;
  /** The rest: host, path, query. */
  readonly rest: string;
}

function split(url: string): UrlParts {
  const scheme = SCHEME.exec(url)?.[0] ?? '';
  let body = url.slice(scheme.length);
  const slashes = body.startsWith('//') ? '//' : '';
  body = body.slice(slashes.length);
  // The last `@`: a password may hold any number of them, a host none.
  const at = body.lastIndexOf('@');
  return at < 0
    ? { scheme, slashes, userInfo: undefined, rest: body }
    : { scheme, slashes, userInfo: body.slice(0, at), rest: body.slice(at + 1) };
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/** `name=value` pairs of the query part of `rest` (raw), with their offsets. */
function credentialParams(rest: string): { start: number; end: number; value: string }[] {
  const q = rest.indexOf('?');
  if (q < 0) return [];
  const found: { start: number; end: number; value: string }[] = [];
  let offset = q + 1;
  const query = rest.slice(offset).split('#')[0] ?? '';
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && CREDENTIAL_PARAM.test(decode(pair.slice(0, eq)))) {
      found.push({ start: offset + eq + 1, end: offset + pair.length, value: pair.slice(eq + 1) });
    }
    offset += pair.length + 1;
  }
  return found;
}

function maskParams(rest: string): string {
  let out = rest;
  for (const { start, end } of credentialParams(rest).reverse()) out = `${out.slice(0, start)}${MASK}${out.slice(end)}`;
  return out;
}

/**
 * The URL with every credential replaced by `***`: the password (everything between the user
 * name's `:` and the last `@`), and the value of every query parameter whose name speaks of a
 * password, secret, token or auth. A user-info that cannot be told from a path or query is masked
 * whole. The user name, host, path and other parameters stay, so the message still says which
 * store it is about.
 */
export function redactUrl(url: string): string {
  const { scheme, slashes, userInfo, rest } = split(url);
  let who = '';
  if (userInfo !== undefined) {
    const colon = userInfo.indexOf(':');
    const user = colon < 0 ? userInfo : userInfo.slice(0, colon);
    if (!PLAIN_USER.test(user)) who = `${MASK}@`;
    else who = colon < 0 ? `${user}@` : `${user}:${MASK}@`;
  }
  return `${scheme}${slashes}${who}${maskParams(rest)}`;
}

/**
 * The credential values a URL holds, raw and decoded (at least 3 characters each): the tool
 * removes them from every line it prints, whatever printed them (a driver's message included).
 */
export function credentialsIn(url: string): string[] {
  const { userInfo, rest } = split(url);
  const values: string[] = [];
  if (userInfo !== undefined) {
    const colon = userInfo.indexOf(':');
    const user = colon < 0 ? userInfo : userInfo.slice(0, colon);
    if (!PLAIN_USER.test(user)) values.push(userInfo);
    else if (colon >= 0) values.push(userInfo.slice(colon + 1));
  }
  for (const { value } of credentialParams(rest)) values.push(value);
  const all = values.flatMap((value) => [value, decode(value)]).filter((value) => value.length >= 3);
  // Longest first, so a value that contains another is removed whole.
  return [...new Set(all)].sort((a, b) => b.length - a.length);
}

/** Replaces every occurrence of each of `secrets` in `text` with `***`. */
export function maskAll(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join(MASK);
  return out;
}
