// Reads and validates single fields from a field tree: every rule about what a Bitrix24 value may look
// like lives here, and every failure names the field (never its value).

import { InvalidEventError } from '../errors.js';
import { Conflict, bracketName, type FieldMap, type FieldNode, type Scalar, type Subject } from './field-tree.js';

/** `member_id`: what real portals send (32 hex digits) and more, but nothing that needs escaping. */
export const MEMBER_ID_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;

/** Tokens: printable ASCII without spaces. They travel in URLs and headers, so nothing else belongs. */
const TOKEN_PATTERN = /^[\x21-\x7E]{1,4096}$/;

/** A host name label; underscores are allowed because on-premise hosts in private networks use them. */
const LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const DOMAIN_PATTERN = new RegExp(`^(?:${LABEL}(?:\\.${LABEL})*|\\[[0-9a-f:.]{2,45}\\])(?::(\\d{1,5}))?$`);

/** Largest accepted `expires`: anything larger is almost surely milliseconds sent by mistake. */
export const MAX_EXPIRES_SECONDS = 99_999_999_999;

/** Options for {@link FieldReader.integer}. */
export interface IntegerRule {
  readonly min: number;
  readonly max: number;
  /** What the value means, for the error message: `a positive integer (unix seconds)`. */
  readonly expected: string;
}

/**
 * Reads fields from one or two trees. With two (the app page: query and body), each field is looked
 * up in its documented place first; present in both with different values is a conflict.
 */
export class FieldReader {
  /** The portal, once its `member_id` is known to be valid: errors carry it to help whoever reads the logs. */
  memberIdForErrors: string | undefined;

  constructor(
    private readonly subject: Subject,
    private readonly roots: readonly FieldMap[],
  ) {}

  /** Reads a valid `member_id` at `path` for error context, without failing when it is not one. */
  adoptMemberId(path: readonly string[], preferred = 0): void {
    try {
      this.memberIdForErrors = this.memberId(path, preferred);
    } catch {
      // Reported properly when the field is read for real.
    }
  }

  /** Builds the error every rule throws. */
  fail(path: readonly string[], reason: string, problem: string, code?: 'UNKNOWN_EVENT'): InvalidEventError {
    const field = bracketName(path);
    return new InvalidEventError(field, reason, `${this.subject} field ${field} ${problem}`, {
      memberId: this.memberIdForErrors,
      ...(code ? { code } : {}),
    });
  }

  private walk(root: FieldMap, path: readonly string[]): FieldNode | undefined {
    let node: FieldNode = root;
    for (let i = 0; i < path.length; i += 1) {
      if (node instanceof Conflict) throw this.conflict(path.slice(0, i), node);
      if (!(node instanceof Map)) throw this.fail(path.slice(0, i), 'type', 'must be a group of fields');
      const next: FieldNode | undefined = node.get(path[i] ?? '');
      if (next === undefined) return undefined;
      node = next;
    }
    if (node instanceof Conflict) throw this.conflict(path, node);
    return node;
  }

  private conflict(path: readonly string[], conflict: Conflict): InvalidEventError {
    return conflict.reason === 'duplicate'
      ? this.fail(path, 'duplicate', 'appears more than once')
      : this.fail(path, 'type', 'is given both as a value and as a group of fields');
  }

  /** The node at `path`, or `undefined` when absent everywhere. */
  node(path: readonly string[], preferred = 0): FieldNode | undefined {
    let found: FieldNode | undefined;
    const order = this.roots.map((_, i) => i).sort((a, b) => (a === preferred ? -1 : b === preferred ? 1 : a - b));
    for (const i of order) {
      const root = this.roots[i];
      if (root === undefined) continue;
      const node = this.walk(root, path);
      if (node === undefined) continue;
      if (found === undefined) found = node;
      else if (isScalar(found) && isScalar(node) && found === node) continue;
      else throw this.fail(path, 'duplicate', 'appears more than once');
    }
    return found;
  }

  /** A single value, or `undefined` when absent, `null` or empty. */
  scalar(path: readonly string[], preferred = 0): Exclude<Scalar, null> | undefined {
    const node = this.node(path, preferred);
    if (node === undefined || node === null || node === '') return undefined;
    if (!isScalar(node)) throw this.fail(path, 'type', 'must be a single value');
    return node;
  }

  /** A text value; numbers are accepted as their decimal text (JSON bodies may carry them). */
  text(path: readonly string[], preferred = 0): string | undefined {
    const value = this.scalar(path, preferred);
    if (value === undefined) return undefined;
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
    if (typeof value !== 'string') throw this.fail(path, 'type', 'must be text');
    return value;
  }

  /** A required text value. */
  requiredText(path: readonly string[], preferred = 0): string {
    const value = this.text(path, preferred);
    if (value === undefined) throw this.fail(path, 'missing', 'is required');
    return value;
  }

  /** An optional short text (language, placement, app SID): bounded, printable ASCII. */
  label(path: readonly string[], maxLength: number, preferred = 0): string | null {
    const value = this.text(path, preferred);
    if (value === undefined) return null;
    if (value.length > maxLength || !/^[\x21-\x7E]+$/.test(value)) {
      throw this.fail(path, 'format', `must be at most ${maxLength} printable characters without spaces`);
    }
    return value;
  }

  /**
   * An informational value (`data[VERSION]`): its text as sent, up to `maxLength` printable
   * characters, or `null` when absent or of any unexpected shape. Never throws: an informational
   * field must never lose an event.
   */
  informational(path: readonly string[], maxLength: number, preferred = 0): string | null {
    try {
      return this.label(path, maxLength, preferred);
    } catch {
      return null;
    }
  }

  /** An informational `Y`/`N` flag: `undefined` when absent or of any unexpected shape. Never throws. */
  informationalFlag(path: readonly string[], preferred = 0): boolean | undefined {
    try {
      return this.flag(path, preferred);
    } catch {
      return undefined;
    }
  }

  /** An optional http(s) endpoint URL: `null` when absent; validated when present. */
  optionalEndpoint(path: readonly string[], preferred = 0): string | null {
    const raw = this.text(path, preferred);
    return raw === undefined ? null : this.endpointFrom(path, raw);
  }

  /** An optional domain: `null` when absent; validated when present. */
  optionalDomain(path: readonly string[], preferred = 0): string | null {
    return this.text(path, preferred) === undefined ? null : this.domain(path, preferred);
  }

  /** An integer within `rule`; decimal text or a JSON number. */
  integer(path: readonly string[], rule: IntegerRule, preferred = 0): number | undefined {
    const value = this.scalar(path, preferred);
    if (value === undefined) return undefined;
    let parsed: number;
    if (typeof value === 'number') parsed = value;
    else if (typeof value === 'string' && /^\d{1,16}$/.test(value)) parsed = Number(value);
    else throw this.fail(path, 'format', `must be ${rule.expected}`);
    if (!Number.isSafeInteger(parsed) || parsed < rule.min || parsed > rule.max) {
      throw this.fail(path, 'format', `must be ${rule.expected}`);
    }
    return parsed;
  }

  /** A Y/N flag (also `1`/`0`, `true`/`false`), or `undefined` when absent. */
  flag(path: readonly string[], preferred = 0): boolean | undefined {
    const value = this.scalar(path, preferred);
    if (value === undefined) return undefined;
    if (value === true || value === 1) return true;
    if (value === false || value === 0) return false;
    if (typeof value === 'string') {
      const upper = value.toUpperCase();
      if (upper === 'Y' || upper === '1' || upper === 'TRUE') return true;
      if (upper === 'N' || upper === '0' || upper === 'FALSE') return false;
    }
    throw this.fail(path, 'format', 'must be Y or N');
  }

  /** An access, refresh or application token: required, printable ASCII, no spaces. */
  token(path: readonly string[], preferred = 0): string {
    const value = this.requiredText(path, preferred);
    if (!TOKEN_PATTERN.test(value)) {
      throw this.fail(path, 'format', 'must be 1 to 4096 printable characters without spaces');
    }
    return value;
  }

  /** An optional token. */
  optionalToken(path: readonly string[], preferred = 0): string | null {
    return this.text(path, preferred) === undefined ? null : this.token(path, preferred);
  }

  /** `member_id`: required, {@link MEMBER_ID_PATTERN}. */
  memberId(path: readonly string[], preferred = 0): string {
    const value = this.requiredText(path, preferred);
    if (!MEMBER_ID_PATTERN.test(value)) {
      throw this.fail(path, 'format', 'must be 1 to 128 letters, digits, `_`, `.` or `-`');
    }
    return value;
  }

  /** The portal host, `host` or `host:port`, lower-cased. */
  domain(path: readonly string[], preferred = 0): string {
    const value = this.requiredText(path, preferred).toLowerCase();
    const match = value.length <= 260 ? DOMAIN_PATTERN.exec(value) : null;
    const port = match?.[1];
    if (match === null || (port !== undefined && (Number(port) < 1 || Number(port) > 65535))) {
      throw this.fail(path, 'format', 'must be a host name with an optional :port');
    }
    return value;
  }

  /** An http(s) endpoint URL (see {@link checkEndpoint}). */
  endpoint(path: readonly string[], preferred = 0): string {
    return this.endpointFrom(path, this.requiredText(path, preferred));
  }

  /** Validates `raw` as an endpoint, blaming `path` when it is not one. */
  endpointFrom(path: readonly string[], raw: string): string {
    const result = checkEndpoint(raw);
    if (typeof result === 'object') return result.href;
    throw this.fail(path, 'format', result);
  }

  /** The app status letter: one upper-case letter. */
  status(path: readonly string[], preferred = 0): string {
    const value = this.requiredText(path, preferred);
    if (!/^[A-Z]$/.test(value)) throw this.fail(path, 'format', 'must be one upper-case letter');
    return value;
  }
}

function isScalar(node: FieldNode): node is Scalar {
  return node === null || typeof node === 'string' || typeof node === 'number' || typeof node === 'boolean';
}

/**
 * Validates an endpoint: an absolute http or https URL with a host, no credentials, no query or
 * fragment, only printable ASCII. Returns the normalised URL (path ending in `/`) or the problem.
 */
export function checkEndpoint(raw: string): { href: string } | string {
  // The URL parser quietly drops tabs and newlines and reads `\` as `/`; refuse them instead.
  if (!/^[\x21-\x7E]{1,2048}$/.test(raw) || raw.includes('\\')) {
    return 'must be a URL of printable characters without spaces';
  }
  if (!/^https?:\/\/[^/?#]/i.test(raw)) return 'must be an absolute http:// or https:// URL';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // No `cause`: the URL error carries the input.
    return 'must be a valid URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an http or https URL';
  if (url.username !== '' || url.password !== '') return 'must not contain credentials';
  if (url.hostname === '') return 'must name a host';
  if (raw.includes('?') || raw.includes('#')) return 'must not have a query or fragment';
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return { href: url.href };
}
