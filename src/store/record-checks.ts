// Runtime checks shared by the built-in stores: a caller's mistake becomes a TypeError naming the
// argument or field (never its value), and a stored record that fails the same checks is corrupt.

import { StoreError } from '../errors.js';
import { userIdOf } from './portal-record.js';
import type { ChainId, PortalRecord, PortalRecordInput, PortalRecordPatch, PortalListOptions } from './token-store.js';

type FieldKind =
  | 'nonEmptyString'
  | 'string'
  | 'finite'
  | 'nullableString'
  | 'nullableInteger'
  | 'nullableFinite'
  | 'state'
  | 'chain';

// Every field of PortalRecordInput with what it must hold; the record's shape in one table so a new
// field cannot be forgotten by one of the checks below (the `satisfies` makes the compiler insist).
const FIELDS = {
  memberId: 'nonEmptyString',
  chain: 'chain',
  domain: 'string',
  clientEndpoint: 'string',
  serverEndpoint: 'string',
  accessToken: 'string',
  refreshToken: 'string',
  expires: 'finite',
  scope: 'string',
  status: 'string',
  userId: 'nullableInteger',
  applicationToken: 'nullableString',
  state: 'state',
  revokedReason: 'nullableString',
  installedAt: 'finite',
  updatedAt: 'finite',
  chainUpdatedAt: 'finite',
  revokedAt: 'nullableFinite',
  eventTs: 'nullableFinite',
} as const satisfies Record<keyof Required<PortalRecordInput>, FieldKind>;

/** Fields added after the first release, and what a record stored before them reads as. */
const DEFAULTS: Partial<Record<FieldName, unknown>> = { chain: 'portal', eventTs: null };

type FieldName = keyof typeof FIELDS;
const FIELD_NAMES = Object.keys(FIELDS) as FieldName[];

const KIND_TEXT: Record<FieldKind, string> = {
  nonEmptyString: 'a non-empty string',
  string: 'a string',
  finite: 'a finite number',
  nullableString: 'a string or null',
  nullableInteger: 'a safe integer or null',
  nullableFinite: 'a finite number or null',
  state: "'active', 'revoked' or 'suspended'",
  chain: "'portal' or 'user:<positive integer>'",
};

/** Whether `value` is a {@link ChainId}: `'portal'` or `'user:<positive safe integer>'`. */
export function isChainId(value: unknown): value is ChainId {
  return value === 'portal' || (typeof value === 'string' && userIdOf(value) !== undefined);
}

function fits(kind: FieldKind, value: unknown): boolean {
  switch (kind) {
    case 'nonEmptyString':
      return typeof value === 'string' && value.length > 0;
    case 'string':
      return typeof value === 'string';
    case 'finite':
      return typeof value === 'number' && Number.isFinite(value);
    case 'nullableString':
      return value === null || typeof value === 'string';
    case 'nullableInteger':
      return value === null || Number.isSafeInteger(value);
    case 'nullableFinite':
      return value === null || (typeof value === 'number' && Number.isFinite(value));
    case 'state':
      return value === 'active' || value === 'revoked' || value === 'suspended';
    case 'chain':
      return isChainId(value);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks a `memberId` argument: a non-empty, well-formed Unicode string (a lone surrogate would make
 * two different ids encode to the same bytes in files, keys and columns).
 */
export function checkMemberId(memberId: unknown, argument = 'memberId'): asserts memberId is string {
  if (typeof memberId !== 'string' || memberId.length === 0) {
    throw new TypeError(`${argument} must be a non-empty string`);
  }
  if (!memberId.isWellFormed()) throw new TypeError(`${argument} must be well-formed Unicode (no lone surrogates)`);
}

/** A {@link ChainKey} checked and normalised: a string key names the portal's chain. */
export interface ResolvedKey {
  /** The portal. */
  readonly memberId: string;
  /** The chain. */
  readonly chain: ChainId;
}

/** Checks a {@link ChainKey} argument and normalises it to `{ memberId, chain }`. */
export function resolveKey(key: unknown, argument = 'key'): ResolvedKey {
  if (typeof key === 'string') {
    checkMemberId(key, argument);
    return { memberId: key, chain: 'portal' };
  }
  if (!isObject(key)) throw new TypeError(`${argument} must be a memberId string or { memberId, chain }`);
  checkMemberId(key['memberId'], `${argument}.memberId`);
  const chain = key['chain'];
  if (!isChainId(chain)) throw new TypeError(`${argument}.chain must be ${KIND_TEXT.chain}`);
  return { memberId: key['memberId'], chain };
}

/**
 * Checks an upsert argument and returns a copy holding only the known fields, so extra properties
 * a caller passed (or a later mutation of the caller's object) never reach the store.
 */
export function checkRecordInput(record: unknown): Omit<PortalRecord, 'version'> {
  if (!isObject(record)) throw new TypeError('record must be an object');
  const copy: Record<string, unknown> = {};
  checkMemberId(record['memberId'], 'record.memberId');
  for (const name of FIELD_NAMES) {
    const kind = FIELDS[name];
    // A field left out that has a default (chain: the portal's; eventTs: none) takes it.
    const value = record[name] === undefined && Object.hasOwn(DEFAULTS, name) ? DEFAULTS[name] : record[name];
    if (!fits(kind, value)) throw new TypeError(`record.${name} must be ${KIND_TEXT[kind]}`);
    copy[name] = value;
  }
  return copy as unknown as Omit<PortalRecord, 'version'>;
}

/**
 * Checks a conditional-write patch; returns a copy without keys whose value is `undefined`.
 * Unknown keys are rejected rather than ignored: a misspelt field would otherwise be a silent no-op.
 */
export function checkPatch(patch: unknown): PortalRecordPatch {
  if (!isObject(patch)) throw new TypeError('patch must be an object');
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(patch)) {
    const value = patch[key];
    if (value === undefined) continue;
    if (key === 'memberId' || key === 'chain' || key === 'version') throw new TypeError(`patch.${key} cannot be changed by update`);
    if (!Object.hasOwn(FIELDS, key)) throw new TypeError(`patch.${key} is not a PortalRecord field`);
    const kind = FIELDS[key as FieldName];
    if (!fits(kind, value)) throw new TypeError(`patch.${key} must be ${KIND_TEXT[kind]}`);
    copy[key] = value;
  }
  return copy;
}

/** Checks the `expectedVersion` argument of update. */
export function checkExpectedVersion(expectedVersion: unknown): asserts expectedVersion is number {
  if (!Number.isSafeInteger(expectedVersion) || (expectedVersion as number) < 0) {
    throw new TypeError('expectedVersion must be a non-negative safe integer');
  }
}

/** Checks the `ttlMs` argument of tryLock. */
export function checkTtlMs(ttlMs: unknown): asserts ttlMs is number {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new TypeError('ttlMs must be a positive finite number of milliseconds');
  }
}

/** The default page size of list. */
export const DEFAULT_LIST_LIMIT = 100;

/** Checks list options and fills in the default limit. */
export function checkListOptions(options: PortalListOptions | undefined): {
  /** Records whose `memberId` sorts strictly after this one; `undefined` from the start. */
  after: string | undefined;
  /** At most this many records (100 when not given). */
  limit: number;
} {
  if (options === undefined) return { after: undefined, limit: DEFAULT_LIST_LIMIT };
  const given: unknown = options;
  if (!isObject(given)) throw new TypeError('options must be an object');
  const after = given['after'];
  const limit = given['limit'] ?? DEFAULT_LIST_LIMIT;
  if (after !== undefined && typeof after !== 'string') throw new TypeError('options.after must be a string');
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) {
    throw new TypeError('options.limit must be a positive integer');
  }
  return { after, limit };
}

/**
 * The version after `current` (0 for a missing record). Throws rather than store a version that
 * no longer compares exactly.
 */
export function nextVersion(current: number, memberId: string): number {
  if (current >= Number.MAX_SAFE_INTEGER) {
    throw new StoreError(`Version of portal ${memberId} cannot be incremented past Number.MAX_SAFE_INTEGER`, {
      memberId,
    });
  }
  return current + 1;
}

/**
 * Validates a record read back from storage.
 * @returns the record (a fresh copy of the known fields), or the name of the first bad field.
 */
export function readStoredRecord(value: unknown):
  | {
      /** The record, a fresh copy of the known fields. */
      record: PortalRecord;
    }
  | {
      /** The first field that does not fit. */
      badField: string;
    } {
  if (!isObject(value)) return { badField: '(record)' };
  const copy: Record<string, unknown> = {};
  for (const name of FIELD_NAMES) {
    // Records stored before a field existed read it as its default (no chain: the portal's chain).
    const field = value[name] === undefined && Object.hasOwn(DEFAULTS, name) ? DEFAULTS[name] : value[name];
    if (!fits(FIELDS[name], field)) return { badField: name };
    copy[name] = field;
  }
  const version = value['version'];
  if (!Number.isSafeInteger(version) || (version as number) < 1) return { badField: 'version' };
  copy['version'] = version;
  return { record: copy as unknown as PortalRecord };
}

/** Applies a checked patch to a record and bumps the version. */
export function applyPatch(record: PortalRecord, patch: PortalRecordPatch): PortalRecord {
  return {
    ...record,
    ...patch,
    memberId: record.memberId,
    chain: record.chain,
    version: nextVersion(record.version, record.memberId),
  };
}

/**
 * The cursor of `listAll` (every chain, in `memberId` then `chain` order): the last record's key as
 * a JSON pair. A cursor that is a bare `memberId` (not a JSON pair) starts after every chain of it.
 */
export function chainCursor(record: { readonly memberId: string; readonly chain: string }): string {
  return JSON.stringify([record.memberId, record.chain]);
}

/** Reads a `listAll` cursor; `undefined` for none. See {@link chainCursor}. */
export function readChainCursor(after: string | undefined): { memberId: string; chain: string } | undefined {
  if (after === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(after);
    if (Array.isArray(parsed) && parsed.length === 2 && typeof parsed[0] === 'string' && typeof parsed[1] === 'string') {
      return { memberId: parsed[0], chain: parsed[1] };
    }
  } catch {
    // a bare memberId
  }
  return { memberId: after, chain: '\uffff' };
}

/** Whether the chain `(memberId, chain)` sorts after the cursor (UTF-16 code units, as `list`). */
export function afterCursor(memberId: string, chain: string, cursor: { memberId: string; chain: string } | undefined): boolean {
  if (cursor === undefined) return true;
  return memberId > cursor.memberId || (memberId === cursor.memberId && chain > cursor.chain);
}
