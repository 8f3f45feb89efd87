// The store's tables, named from the table prefix, and the migration that creates them: versioned in a
// meta table, idempotent, and serialised between processes by a transaction-scoped advisory lock.

import { createHash } from 'node:crypto';
import { StoreError } from '../../errors.js';
import type { PgPoolClientLike, PgPoolLike } from './driver.js';
import { isTransient, storeFailure } from './errors.js';

/** The schema version this code reads and writes. Bump it and append to MIGRATIONS together. */
export const SCHEMA_VERSION = 3;

/** The default table prefix. */
export const DEFAULT_TABLE_PREFIX = 'b24pt';

// Lower case only, so the names mean the same quoted or not; short enough that the longest derived
// name (`<prefix>_portals_idx`) stays under PostgreSQL's 63-byte identifier limit.
const PREFIX_PATTERN = /^[a-z_][a-z0-9_]{0,39}$/;

/** Every name the store uses, derived from one prefix. Quoted identifiers, ready to splice into SQL. */
export interface SchemaNames {
  readonly prefix: string;
  readonly meta: string;
  readonly records: string;
  readonly locks: string;
  readonly budgets: string;
  readonly portalsIndex: string;
  /** The NOTIFY channel, as text (for pg_notify) ... */
  readonly channel: string;
  /** ... and as a quoted identifier (for LISTEN). */
  readonly channelIdentifier: string;
  /** The key of the advisory lock that serialises migrations, as a decimal bigint. */
  readonly migrationLockKey: string;
}

/** Checks a table prefix and derives every name from it. */
export function schemaNames(prefix: unknown): SchemaNames {
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new TypeError('tablePrefix must be 1 to 40 characters of a-z, 0-9 and _, not starting with a digit');
  }
  // One underscore between prefix and name: `app_` names the same tables as `app`, never `app__records`.
  const stem = prefix.endsWith('_') && prefix.length > 1 ? prefix.slice(0, -1) : prefix;
  const digest = createHash('sha256').update(`b24-portal-tokens:migrate:${stem}`).digest();
  return {
    prefix,
    meta: `"${stem}_meta"`,
    records: `"${stem}_records"`,
    locks: `"${stem}_locks"`,
    budgets: `"${stem}_budgets"`,
    portalsIndex: `"${stem}_portals_idx"`,
    channel: `${stem}_changes`,
    channelIdentifier: `"${stem}_changes"`,
    migrationLockKey: digest.readBigInt64BE(0).toString(),
  };
}

/**
 * The statements that take the schema from version `i` to `i + 1`. Released steps never change;
 * a new version appends a step.
 */
function migrations(n: SchemaNames): readonly (readonly string[])[] {
  return [
    [
      // A deleted chain stays as a tombstone row (deleted = true, every other column NULL) so that
      // its version continues when the chain is re-created.
      `CREATE TABLE ${n.records} (
        member_id text COLLATE "C" NOT NULL,
        chain text COLLATE "C" NOT NULL,
        version bigint NOT NULL CHECK (version >= 1),
        deleted boolean NOT NULL DEFAULT false,
        domain text, client_endpoint text, server_endpoint text,
        access_token text, refresh_token text, expires double precision,
        scope text, status text, user_id bigint, application_token text,
        state text, revoked_reason text,
        installed_at double precision, updated_at double precision,
        chain_updated_at double precision, revoked_at double precision,
        PRIMARY KEY (member_id, chain),
        CHECK (deleted OR (access_token IS NOT NULL AND refresh_token IS NOT NULL AND state IS NOT NULL))
      )`,
      `CREATE INDEX ${n.portalsIndex} ON ${n.records} (member_id) WHERE chain = 'portal' AND NOT deleted`,
      // Lease rows of the per-chain lock; expires_at is unix ms by the database's clock.
      `CREATE TABLE ${n.locks} (
        member_id text COLLATE "C" NOT NULL,
        chain text COLLATE "C" NOT NULL,
        token text NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (member_id, chain)
      )`,
    ],
    // 2: the ts of the newest lifecycle event applied to a chain (replayed or late events change nothing).
    [`ALTER TABLE ${n.records} ADD COLUMN event_ts double precision`],
    // 3: request budgets (GCRA): a key's theoretical arrival time, unix ms by the database's clock,
    // and the answer of its last step (so one INSERT ... ON CONFLICT ... RETURNING gives it back).
    [
      `CREATE TABLE ${n.budgets} (
        key text COLLATE "C" PRIMARY KEY,
        tat double precision NOT NULL,
        now_ms double precision NOT NULL,
        wait_ms double precision NOT NULL,
        granted boolean NOT NULL
      )`,
    ],
  ];
}

async function readVersion(run: (sql: string) => Promise<{ rows: readonly Record<string, unknown>[] }>, n: SchemaNames): Promise<number> {
  const { rows } = await run(`SELECT value FROM ${n.meta} WHERE key = 'schema_version'`);
  const value = rows[0]?.['value'];
  if (value === undefined) return 0;
  const version = Number(value);
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new StoreError(`PostgreSQL token store: table ${n.meta} holds an unreadable schema version`);
  }
  return version;
}

function tooNew(n: SchemaNames, version: number): StoreError {
  return new StoreError(
    `PostgreSQL token store: tables "${n.prefix}_*" have schema version ${version}, newer than this library's ` +
      `${SCHEMA_VERSION}; upgrade b24-portal-tokens in every process that shares them`,
    { reason: 'schema-version' },
  );
}

/** The store's table names as a person reads them (without the quotes). */
export function tableList(n: SchemaNames): string {
  return [n.meta, n.records, n.locks, n.budgets].map((name) => name.slice(1, -1)).join(', ');
}

/**
 * Checks, without changing anything, that the schema is there at {@link SCHEMA_VERSION} (for a
 * store with `createSchema: false`): missing tables and another version are typed errors, never a
 * migration. `to_regclass` resolves the name the way the store's queries do (the search path).
 */
export async function checkSchema(pool: PgPoolLike, n: SchemaNames): Promise<void> {
  let found: { database: string; meta: boolean };
  try {
    const { rows } = await pool.query('SELECT current_database() AS database, to_regclass($1) IS NOT NULL AS meta', [n.meta]);
    found = { database: String(rows[0]?.['database']), meta: rows[0]?.['meta'] === true };
  } catch (error) {
    throw storeFailure(error, 'check its schema');
  }
  if (!found.meta) {
    throw new StoreError(
      `PostgreSQL token store: no tables named ${tableList(n)} in database ${found.database}: ` +
        'check tablePrefix and the database (createSchema is off: nothing was created)',
      { reason: 'schema-missing' },
    );
  }
  let version: number;
  try {
    version = await readVersion((sql) => pool.query(sql), n);
  } catch (error) {
    throw storeFailure(error, 'check its schema');
  }
  if (version > SCHEMA_VERSION) throw tooNew(n, version);
  if (version < SCHEMA_VERSION) {
    throw new StoreError(
      `PostgreSQL token store: tables "${n.prefix}_*" in database ${found.database} have schema version ${version}, ` +
        `older than this library's ${SCHEMA_VERSION}, and createSchema is off: start the store once with ` +
        `createSchema on to migrate them`,
      { reason: 'schema-version' },
    );
  }
}

/**
 * Brings the schema to {@link SCHEMA_VERSION}: a no-op (one read) when it is current; otherwise,
 * in one transaction holding an advisory lock, so processes starting at once on an empty database
 * migrate one after the other and the later ones find the work done.
 */
export async function migrate(pool: PgPoolLike, n: SchemaNames): Promise<void> {
  try {
    const version = await readVersion((sql) => pool.query(sql), n);
    if (version === SCHEMA_VERSION) return;
    if (version > SCHEMA_VERSION) throw tooNew(n, version);
  } catch (error) {
    // 42P01: the meta table does not exist yet (an empty database): migrate below.
    if ((error as { code?: unknown }).code !== '42P01') throw storeFailure(error, 'check its schema');
  }
  let client: PgPoolClientLike;
  try {
    client = await pool.connect();
  } catch (error) {
    throw storeFailure(error, 'connect to migrate its schema');
  }
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [n.migrationLockKey]);
    await client.query(`CREATE TABLE IF NOT EXISTS ${n.meta} (key text PRIMARY KEY, value text NOT NULL)`);
    const version = await readVersion((sql) => client.query(sql), n);
    if (version > SCHEMA_VERSION) throw tooNew(n, version);
    const steps = migrations(n);
    for (let step = version; step < SCHEMA_VERSION; step++) {
      for (const statement of steps[step] ?? []) await client.query(statement);
    }
    await client.query(
      `INSERT INTO ${n.meta} (key, value) VALUES ('schema_version', $1)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
      [String(SCHEMA_VERSION)],
    );
    await client.query('COMMIT');
  } catch (error) {
    if (isTransient(error)) broken = error instanceof Error ? error : new Error('connection failed');
    await client.query('ROLLBACK').catch(() => undefined);
    throw storeFailure(error, 'migrate its schema');
  } finally {
    // A connection that failed mid-transaction is discarded rather than handed to the next caller.
    client.release(broken);
  }
}
