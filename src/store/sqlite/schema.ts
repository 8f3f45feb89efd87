// The SQLite store's schema: table names, the versioned migrations and how they run, and the mapping
// between a PortalRecord and a row.

import { StoreError } from '../../errors.js';
import { readStoredRecord } from '../record-checks.js';
import type { ChainId, PortalRecord } from '../token-store.js';
import { isBusy, type SqliteDatabase } from './driver.js';

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = 3;

/** The default table-name prefix. */
export const DEFAULT_TABLE_PREFIX = 'b24pt_';

const PREFIX = /^[A-Za-z_][A-Za-z0-9_]{0,40}$/;

/** Checks the `tablePrefix` option. */
export function checkTablePrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new TypeError('tablePrefix must be 1 to 41 letters, digits or underscores, not starting with a digit');
  }
}

/** The quoted names of the store's tables for one prefix. */
export interface TableNames {
  /** Key-value metadata: the schema version. */
  readonly meta: string;
  /** One row per chain, live or tombstone. */
  readonly chains: string;
  /** One row per held (or lapsed, not yet released) chain lock. */
  readonly locks: string;
  readonly budgets: string;
}

/** The table names for `prefix` (already checked), quoted for SQL. */
export function tableNames(prefix: string): TableNames {
  // One underscore between prefix and name: `app` names the same tables as `app_` (`app_chains`).
  const stem = prefix.endsWith('_') ? prefix : `${prefix}_`;
  return { meta: `"${stem}meta"`, chains: `"${stem}chains"`, locks: `"${stem}locks"`, budgets: `"${stem}budgets"` };
}

// Record field → column. The key columns (member_key, chain) and version/deleted are handled apart.
const COLUMNS = [
  ['memberId', 'member_id'],
  ['domain', 'domain'],
  ['clientEndpoint', 'client_endpoint'],
  ['serverEndpoint', 'server_endpoint'],
  ['accessToken', 'access_token'],
  ['refreshToken', 'refresh_token'],
  ['expires', 'expires'],
  ['scope', 'scope'],
  ['status', 'status'],
  ['userId', 'user_id'],
  ['applicationToken', 'application_token'],
  ['state', 'state'],
  ['revokedReason', 'revoked_reason'],
  ['installedAt', 'installed_at'],
  ['updatedAt', 'updated_at'],
  ['chainUpdatedAt', 'chain_updated_at'],
  ['revokedAt', 'revoked_at'],
  ['eventTs', 'event_ts'],
] as const satisfies readonly (readonly [Exclude<keyof PortalRecord, 'chain' | 'version'>, string])[];

/** The data columns, in the order {@link recordValues} gives their values. */
export const DATA_COLUMNS: readonly string[] = COLUMNS.map(([, column]) => column);

/** The values of a record's data columns, in {@link DATA_COLUMNS} order. */
export function recordValues(record: PortalRecord | Omit<PortalRecord, 'version'>): unknown[] {
  return COLUMNS.map(([field]) => record[field]);
}

/**
 * The key a memberId is stored and sorted under: its UTF-16 code units, big-endian. SQLite compares
 * BLOBs byte by byte, so this sorts exactly like JavaScript compares strings (UTF-8 text would put
 * U+E000..U+FFFF after astral characters) and is exact for any string, a NUL included.
 */
export function memberKey(memberId: string): Buffer {
  return Buffer.from(memberId, 'utf16le').swap16();
}

/** A row of the chains table as the driver returns it. */
export interface ChainRow {
  readonly [column: string]: unknown;
}

/**
 * Turns a live row into a record, checking every field; a row that fails is corrupt. `memberId`
 * and `chain` are what the row was looked up by, when known.
 */
export function rowToRecord(row: ChainRow, memberId: string | undefined, chain: ChainId | undefined): PortalRecord {
  const candidate: Record<string, unknown> = { chain: row['chain'], version: row['version'] };
  for (const [field, column] of COLUMNS) candidate[field] = row[column];
  const checked = readStoredRecord(candidate);
  const id = memberId ?? (typeof row['member_id'] === 'string' ? row['member_id'] : undefined);
  if ('badField' in checked) {
    throw new StoreError(`Stored record of portal ${id ?? '(unknown)'} is corrupt (bad field ${checked.badField})`, { memberId: id });
  }
  const record = checked.record;
  const key = row['member_key'];
  const keyMatches = Buffer.isBuffer(key) && key.equals(memberKey(record.memberId));
  if (!keyMatches || (memberId !== undefined && record.memberId !== memberId) || (chain !== undefined && record.chain !== chain)) {
    throw new StoreError(`Stored record of portal ${id ?? '(unknown)'} is corrupt (its key does not match its memberId or chain)`, {
      memberId: id,
    });
  }
  return record;
}

/** The stored version of a row (live or tombstone), checked. */
export function rowVersion(row: ChainRow, memberId: string): number {
  const version = row['version'];
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    throw new StoreError(`Stored record of portal ${memberId} is corrupt (bad field version)`, { memberId });
  }
  return version;
}

// Migration n takes the schema from version n to n + 1. Append only; never edit a released step.
function migrations(names: TableNames, prefix: string): readonly string[] {
  // Version 1's columns, frozen: columns added later come in their own step below.
  const data = DATA_COLUMNS.filter((column) => column !== 'member_id' && !LATER_COLUMNS.includes(column))
    .map((column) => `  ${column} ${/_at$|^expires$|^user_id$/.test(column) ? 'INTEGER' : 'TEXT'}`)
    .join(',\n');
  return [
    `CREATE TABLE ${names.chains} (
  member_key BLOB NOT NULL,
  chain TEXT NOT NULL,
  member_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
${data},
  PRIMARY KEY (member_key, chain)
) WITHOUT ROWID;
CREATE INDEX "${prefix}live_portals" ON ${names.chains} (member_key) WHERE chain = 'portal' AND deleted = 0;
CREATE TABLE ${names.locks} (
  member_key BLOB NOT NULL,
  chain TEXT NOT NULL,
  token TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (member_key, chain)
) WITHOUT ROWID;`,
    // 2: the ts of the newest lifecycle event applied to a chain (replayed or late events change nothing).
    `ALTER TABLE ${names.chains} ADD COLUMN event_ts INTEGER;`,
    // 3: request budgets (GCRA): a key's theoretical arrival time and the answer of its last step.
    `CREATE TABLE ${names.budgets} (
  key TEXT PRIMARY KEY,
  tat REAL NOT NULL,
  now_ms REAL NOT NULL,
  wait_ms REAL NOT NULL,
  granted INTEGER NOT NULL
) WITHOUT ROWID;`,
  ];
}

/** Columns that later migrations add (version 1 must not create them). */
const LATER_COLUMNS: readonly string[] = ['event_ts'];

function storedVersion(database: SqliteDatabase, names: TableNames): number {
  const row = database.prepare(`SELECT value FROM ${names.meta} WHERE key = 'schema_version'`).get() as
    | { value?: unknown }
    | undefined;
  if (row === undefined) return 0;
  if (typeof row.value !== 'number' || !Number.isSafeInteger(row.value) || row.value < 0) {
    throw new StoreError('SQLite store schema is corrupt (bad schema_version)', { transient: false });
  }
  return row.value;
}

function checkNotNewer(version: number): void {
  if (version > SCHEMA_VERSION) {
    throw new StoreError(
      `SQLite store schema is version ${version}, newer than this library supports (${SCHEMA_VERSION}): upgrade b24-portal-tokens`,
      { transient: false, reason: 'schema-version' },
    );
  }
}

/** The store's table names as a person reads them (without the quotes). */
export function tableList(prefix: string): string {
  const names = tableNames(prefix);
  return [names.meta, names.chains, names.locks, names.budgets].map((name) => name.slice(1, -1)).join(', ');
}

/**
 * Checks, without changing anything, that the schema is there at {@link SCHEMA_VERSION} (for a
 * store with `createSchema: false`): missing tables and another version are typed errors, never a
 * migration. `where` names the database in the message (its file).
 */
export function checkSchema(database: SqliteDatabase, prefix: string, where: string): void {
  const names = tableNames(prefix);
  const meta = names.meta.slice(1, -1);
  const found = database.prepare("SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = ?").get(meta);
  if (found === undefined) {
    throw new StoreError(
      `SQLite store: no tables named ${tableList(prefix)} in ${where}: check the file and tablePrefix ` +
        '(createSchema is off: nothing was created)',
      { transient: false, reason: 'schema-missing' },
    );
  }
  const version = storedVersion(database, names);
  checkNotNewer(version);
  if (version < SCHEMA_VERSION) {
    throw new StoreError(
      `SQLite store schema in ${where} is version ${version}, older than this library's ${SCHEMA_VERSION}, and ` +
        'createSchema is off: open the store once with createSchema on to migrate it',
      { transient: false, reason: 'schema-version' },
    );
  }
}

/**
 * Creates or migrates the schema. Idempotent, and safe when several processes start at once on an
 * empty file: the check and every step run in one BEGIN IMMEDIATE transaction, so exactly one
 * process migrates and the others then find the current version.
 */
export function migrate(database: SqliteDatabase, prefix: string): void {
  const names = tableNames(prefix);
  // The common case, a current schema, needs no write lock.
  try {
    const current = storedVersion(database, names);
    checkNotNewer(current);
    if (current === SCHEMA_VERSION) return;
  } catch (error) {
    if (error instanceof StoreError || isBusy(error)) throw error;
    // No meta table yet: migrate below.
  }
  database.exec('BEGIN IMMEDIATE');
  try {
    database.exec(`CREATE TABLE IF NOT EXISTS ${names.meta} (key TEXT PRIMARY KEY, value ANY NOT NULL) WITHOUT ROWID`);
    const current = storedVersion(database, names);
    checkNotNewer(current);
    const steps = migrations(names, prefix);
    for (let version = current; version < SCHEMA_VERSION; version++) {
      const step = steps[version];
      if (step === undefined) throw new StoreError(`SQLite store has no migration from schema version ${version}`);
      database.exec(step);
    }
    database
      .prepare(`INSERT INTO ${names.meta} (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`)
      .run(SCHEMA_VERSION);
    database.exec('COMMIT');
  } catch (error) {
    if (database.inTransaction) database.exec('ROLLBACK');
    throw error;
  }
}
