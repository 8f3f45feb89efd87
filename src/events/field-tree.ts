// Turns every accepted input form (form or JSON text or bytes, URLSearchParams, nested or flat-key
// objects) into one bounded tree of Maps, so the parser reads known keys from a structure no key can pollute.

import { formatOfContentType, sniffTextFormat, type TextFormat } from '../body.js';
import { InvalidEventError } from '../errors.js';

/** A leaf value: form bodies give strings; JSON and parsed objects may also give numbers and booleans. */
export type Scalar = string | number | boolean | null;

/**
 * Marks a place where the input said two things at once (a repeated key, or a key that is both a
 * value and a group). It is only an error when the parser actually reads that field, so repeated
 * keys the parser ignores stay harmless and are never echoed into an error.
 */
export class Conflict {
  constructor(readonly reason: 'duplicate' | 'type') {}
}

/** One node of the tree. Arrays come only from JSON or already-parsed objects. */
export type FieldNode = Scalar | FieldMap | FieldNode[] | Conflict;

/** A group of fields. A `Map` rather than an object: no key, `__proto__` included, means anything special. */
export type FieldMap = Map<string, FieldNode>;

/** Bounds applied while building a tree. */
export interface TreeLimits {
  /** Largest accepted body, in bytes. */
  readonly maxBytes: number;
  /** Most keys (form pairs, JSON properties and array elements) accepted. */
  readonly maxKeys: number;
  /** Deepest accepted nesting (`a[b][c]` is 3). */
  readonly maxDepth: number;
}


/** The context an error message names: "Lifecycle event" or "App page request". */
export type Subject = string;

/** Running totals checked against {@link TreeLimits} while a tree is built. */
interface Budget {
  readonly limits: TreeLimits;
  readonly subject: Subject;
  readonly field: string;
  keys: number;
  bytes: number;
}

const encoder = new TextEncoder();

function tooLarge(budget: Budget): InvalidEventError {
  return new InvalidEventError(
    budget.field,
    'too_large',
    `${budget.subject} ${budget.field} is larger than ${budget.limits.maxBytes} bytes`,
  );
}

function countKey(budget: Budget): void {
  budget.keys += 1;
  if (budget.keys > budget.limits.maxKeys) {
    throw new InvalidEventError(
      budget.field,
      'too_many_keys',
      `${budget.subject} ${budget.field} has more than ${budget.limits.maxKeys} keys`,
    );
  }
}

function countBytes(budget: Budget, text: string): void {
  // Text bodies were measured exactly before decoding; for parsed objects and URLSearchParams the
  // UTF-16 length is a close enough (never larger) stand-in for bytes.
  budget.bytes += text.length;
  if (budget.bytes > budget.limits.maxBytes) throw tooLarge(budget);
}

function tooDeep(budget: Budget): InvalidEventError {
  return new InvalidEventError(
    budget.field,
    'too_deep',
    `${budget.subject} ${budget.field} is nested deeper than ${budget.limits.maxDepth} levels`,
  );
}

const BRACKETED_KEY = /^([^[\]]+)((?:\[[^[\]]*\])+)$/;

/**
 * Splits a PHP-style key (`auth[access_token]`) into its path (`['auth', 'access_token']`).
 * A key whose brackets do not pair up is taken literally: it names no field the parser reads.
 */
export function splitBracketKey(key: string): string[] {
  const match = BRACKETED_KEY.exec(key);
  if (match === null) return [key];
  const [, head = '', rest = ''] = match;
  return [head, ...rest.slice(1, -1).split('][')];
}

/** Spells a path the way Bitrix24 does: `['auth', 'expires']` becomes `auth[expires]`. */
export function bracketName(path: readonly string[]): string {
  const [head = '', ...rest] = path;
  return head + rest.map((segment) => `[${segment}]`).join('');
}

function isBranch(node: FieldNode): boolean {
  return node instanceof Map || Array.isArray(node);
}

/** Puts `node` at `key`, merging groups; a clash leaves a {@link Conflict} that reading will report. */
function assign(map: FieldMap, key: string, node: FieldNode): void {
  const existing = map.get(key);
  if (existing === undefined) {
    map.set(key, node);
  } else if (existing instanceof Conflict) {
    // Already poisoned: stays so whatever else arrives.
  } else if (existing instanceof Map && node instanceof Map) {
    for (const [childKey, child] of node) assign(existing, childKey, child);
  } else {
    map.set(key, new Conflict(isBranch(existing) || isBranch(node) ? 'type' : 'duplicate'));
  }
}

/** Places `node` at `path` below `root`, creating groups on the way. */
function place(root: FieldMap, path: readonly string[], node: FieldNode): void {
  let map = root;
  for (let i = 0; i < path.length - 1; i += 1) {
    const segment = path[i] ?? '';
    const existing = map.get(segment);
    if (existing === undefined) {
      const created: FieldMap = new Map();
      map.set(segment, created);
      map = created;
    } else if (existing instanceof Map) {
      map = existing;
    } else {
      if (!(existing instanceof Conflict)) map.set(segment, new Conflict('type'));
      return;
    }
  }
  assign(map, path[path.length - 1] ?? '', node);
}

/** Converts one value of a parsed object or JSON document; nested keys are literal, never split. */
function convertValue(value: unknown, depth: number, budget: Budget): FieldNode | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    countBytes(budget, value);
    return value;
  }
  if (typeof value === 'number') {
    countBytes(budget, '0000000000');
    return value;
  }
  if (typeof value !== 'object') {
    throw new InvalidEventError(
      budget.field,
      'type',
      `${budget.subject} ${budget.field} holds a value that is not text, a number, a boolean, an object or an array`,
    );
  }
  if (depth >= budget.limits.maxDepth) throw tooDeep(budget);
  if (Array.isArray(value)) {
    const list: FieldNode[] = [];
    for (const element of value as unknown[]) {
      countKey(budget);
      list.push(convertValue(element, depth + 1, budget) ?? null);
    }
    return list;
  }
  const map: FieldMap = new Map();
  for (const key of Object.keys(value)) {
    countKey(budget);
    countBytes(budget, key);
    const child = convertValue((value as Record<string, unknown>)[key], depth + 1, budget);
    if (child !== undefined) map.set(key, child);
  }
  return map;
}

/** Converts a top-level object, whose keys may be flat bracket keys (`auth[member_id]`) or plain. */
function objectToTree(value: object, budget: Budget): FieldMap {
  const root: FieldMap = new Map();
  for (const key of Object.keys(value)) {
    countKey(budget);
    countBytes(budget, key);
    const path = splitBracketKey(key);
    if (path.length > budget.limits.maxDepth) throw tooDeep(budget);
    const child = convertValue((value as Record<string, unknown>)[key], path.length, budget);
    if (child !== undefined) place(root, path, child);
  }
  return root;
}

function formToTree(params: URLSearchParams, budget: Budget): FieldMap {
  const root: FieldMap = new Map();
  for (const [key, value] of params) {
    countKey(budget);
    countBytes(budget, key);
    countBytes(budget, value);
    const path = splitBracketKey(key);
    if (path.length > budget.limits.maxDepth) throw tooDeep(budget);
    place(root, path, value);
  }
  return root;
}

/**
 * Parses JSON text into a tree of the given limits. Syntax errors carry no `cause`: the engine's
 * message may quote the input, and the input holds tokens.
 */
export function jsonToNode(text: string, budget: Omit<Budget, 'keys' | 'bytes'>): FieldNode {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InvalidEventError(budget.field, 'syntax', `${budget.subject} ${budget.field} is not valid JSON`);
  }
  return convertValue(parsed, 0, { ...budget, keys: 0, bytes: 0 }) ?? null;
}

/** Decides form or JSON from a `Content-Type` value (the shared rule of `src/body.ts`); `undefined` means "sniff". */
function formatFromContentType(contentType: string | undefined, budget: Budget): TextFormat | undefined {
  const format = formatOfContentType(contentType);
  if (format !== 'unsupported') return format;
  throw new InvalidEventError(
    budget.field,
    'content_type',
    `${budget.subject} ${budget.field} has an unsupported content type; send application/x-www-form-urlencoded or application/json`,
  );
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeBytes(bytes: Uint8Array, budget: Budget): string {
  if (bytes.byteLength > budget.limits.maxBytes) throw tooLarge(budget);
  try {
    return utf8.decode(bytes);
  } catch {
    throw new InvalidEventError(budget.field, 'syntax', `${budget.subject} ${budget.field} is not valid UTF-8`);
  }
}

function textToTree(text: string, contentType: string | undefined, budget: Budget): FieldMap {
  if (text.length > budget.limits.maxBytes || encoder.encode(text).byteLength > budget.limits.maxBytes) {
    throw tooLarge(budget);
  }
  const format =
    formatFromContentType(contentType, budget) ?? sniffTextFormat(text);
  if (format === 'form') {
    // Raw whitespace never belongs to a form body (spaces are encoded), but files and shells add newlines.
    return formToTree(new URLSearchParams(text.trim()), budget);
  }
  const node = jsonToNode(text.replace(/^\uFEFF/, ''), budget);
  if (!(node instanceof Map)) {
    throw new InvalidEventError(budget.field, 'type', `${budget.subject} ${budget.field} must be a JSON object`);
  }
  return node;
}

/** Options for {@link toFieldTree}. */
export interface ToTreeOptions {
  readonly limits: TreeLimits;
  readonly subject: Subject;
  /** Name of the whole input in errors: `body` or `query`. */
  readonly field: string;
  readonly contentType?: string | undefined;
}

/**
 * Builds the tree for any accepted input form. Throws {@link InvalidEventError} for input of the
 * wrong type, too large, too many keys, too deep, or not decodable; conflicts are left in the tree.
 */
export function toFieldTree(input: unknown, options: ToTreeOptions): FieldMap {
  const budget: Budget = { limits: options.limits, subject: options.subject, field: options.field, keys: 0, bytes: 0 };
  if (typeof input === 'string') return textToTree(input, options.contentType, budget);
  if (input instanceof Uint8Array) return textToTree(decodeBytes(input, budget), options.contentType, budget);
  if (input instanceof ArrayBuffer) {
    return textToTree(decodeBytes(new Uint8Array(input), budget), options.contentType, budget);
  }
  if (input instanceof URLSearchParams) return formToTree(input, budget);
  if (input !== null && typeof input === 'object' && !Array.isArray(input)) return objectToTree(input, budget);
  throw new InvalidEventError(
    options.field,
    'type',
    `${options.subject} ${options.field} must be form or JSON text or bytes, URLSearchParams, or an object`,
  );
}

const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Turns a subtree back into plain data for a caller (`PLACEMENT_OPTIONS`). Objects have a null
 * prototype and never carry `__proto__`, `constructor` or `prototype` keys, so no later merge into
 * another object can reach a prototype. Returns `undefined` at the first conflict.
 */
export function toPlainData(node: FieldNode): unknown {
  if (node instanceof Conflict) return undefined;
  if (Array.isArray(node)) {
    const list: unknown[] = [];
    for (const element of node) {
      const plain = toPlainData(element);
      if (plain === undefined) return undefined;
      list.push(plain);
    }
    return list;
  }
  if (node instanceof Map) {
    const object = Object.create(null) as Record<string, unknown>;
    for (const [key, child] of node) {
      if (UNSAFE_KEYS.has(key)) continue;
      const plain = toPlainData(child);
      if (plain === undefined) return undefined;
      object[key] = plain;
    }
    return object;
  }
  return node;
}
