// Records to rows and back: the column of every field, parameters as the driver should send them, and
// a row read back checked with the same rules as a record written.

import { StoreError } from '../../errors.js';
import { readStoredRecord } from '../record-checks.js';
import type { PortalRecord, PortalRecordPatch } from '../token-store.js';

/** The column of every field a write may set (all but the key and the version). */
export const COLUMNS = {
  domain: 'domain',
  clientEndpoint: 'client_endpoint',
  serverEndpoint: 'server_endpoint',
  accessToken: 'access_token',
  refreshToken: 'refresh_token',
  expires: 'expires',
  scope: 'scope',
  status: 'status',
  userId: 'user_id',
  applicationToken: 'application_token',
  state: 'state',
  revokedReason: 'revoked_reason',
  installedAt: 'installed_at',
  updatedAt: 'updated_at',
  chainUpdatedAt: 'chain_updated_at',
  revokedAt: 'revoked_at',
  eventTs: 'event_ts',
} as const satisfies Record<keyof Required<PortalRecordPatch>, string>;

/** The data fields in a fixed order. */
export const DATA_FIELDS = Object.keys(COLUMNS) as (keyof typeof COLUMNS)[];

/**
 * The longest `memberId` this store accepts, in UTF-8 bytes: it keeps every change notification
 * far below PostgreSQL's 8000-byte payload limit and every key below the index row limit.
 */
export const MAX_MEMBER_ID_BYTES = 1024;

/** Checks what PostgreSQL cannot hold: a NUL character in text, and an overlong memberId. */
export function checkStorable(argument: string, values: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(values)) {
    if (typeof value === 'string' && value.includes('\u0000')) {
      throw new TypeError(`${argument}${name} cannot contain NUL characters (PostgreSQL text cannot hold them)`);
    }
  }
  const memberId = values['memberId'];
  if (typeof memberId === 'string' && Buffer.byteLength(memberId, 'utf8') > MAX_MEMBER_ID_BYTES) {
    throw new TypeError(`${argument}memberId must be at most ${MAX_MEMBER_ID_BYTES} UTF-8 bytes for PostgresTokenStore`);
  }
}

/** A value as a query parameter: the driver would send -0 as "0", so it goes as text. */
export function param(value: unknown): unknown {
  return Object.is(value, -0) ? '-0' : value;
}

// bigint columns arrive as strings (node-postgres keeps int8 exact); every value we store in one is
// a safe integer, which Number() reads exactly.
function integer(value: unknown): unknown {
  return typeof value === 'string' && /^-?[0-9]{1,16}$/.test(value) ? Number(value) : value;
}

/** Turns a row of the records table into a record, or throws a StoreError naming the bad column. */
export function rowToRecord(row: Record<string, unknown>): PortalRecord {
  const candidate: Record<string, unknown> = {
    memberId: row['member_id'],
    chain: row['chain'],
    version: integer(row['version']),
  };
  for (const field of DATA_FIELDS) {
    const value = row[COLUMNS[field]];
    candidate[field] = field === 'userId' ? integer(value) : value;
  }
  const checked = readStoredRecord(candidate);
  if ('badField' in checked) {
    const memberId = typeof row['member_id'] === 'string' ? row['member_id'] : undefined;
    throw new StoreError(`PostgreSQL token store: the row of portal ${memberId ?? '(unknown)'} is corrupt (${checked.badField})`, {
      memberId,
    });
  }
  return checked.record;
}
