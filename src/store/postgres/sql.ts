// The store's SQL, built once per table prefix. Column and table names come from fixed tables in this
// package (never from input); every value travels as a parameter.

import { COLUMNS, DATA_FIELDS } from './rows.js';
import type { SchemaNames } from './schema.js';

/** The largest version a bigint column may be bumped to while JavaScript still reads it exactly. */
export const MAX_VERSION = Number.MAX_SAFE_INTEGER;
/** Unix milliseconds by the database's clock (one clock for every process sharing the store). */
export const NOW_MS = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;
/** The pg_notify call announcing the row `alias` on channel $1 (no token in the payload). */
export const NOTIFY = (alias: string): string =>
  `pg_notify($1, json_build_object('memberId', ${alias}.member_id, 'chain', ${alias}.chain, ` +
  `'version', ${alias}.version, 'deleted', ${alias}.deleted)::text)`;

/**
 * Raises `synchronous_commit` for the transaction of a chain write (evaluated once per written row,
 * so only a statement that wrote something pays): a server or role running with `off` or `local`
 * would otherwise acknowledge a rotation it can still lose (`off`: a crash of the primary itself;
 * `local`: a failover to a standby that never got it). `on` waits for the local flush and for the
 * synchronous standbys named in `synchronous_standby_names`, if any; stronger settings
 * (`remote_write`, `remote_apply`) are kept. `set_config(..., true)` lasts until the end of the
 * transaction, so it is safe through a transaction pooler. Returned as the column `chain_commit`.
 */
export const DURABLE_COMMIT =
  `set_config('synchronous_commit', CASE WHEN current_setting('synchronous_commit') IN ('off', 'local') ` +
  `THEN 'on' ELSE current_setting('synchronous_commit') END, true) AS chain_commit`;

/**
 * Lets the transaction of a lock row or budget step commit without waiting for its WAL flush (or for
 * synchronous standbys): neither holds a token, a lost one after a crash only frees a lock early (the
 * conditional write still fences the chain) or forgets a few budget slots. Under load on a shared
 * server this keeps the hot rows (a portal's budget key, taken by every worker) from serialising
 * on fsync. Evaluated only for a row written. Returned as the column `lease_commit`.
 */
export const LIGHT_COMMIT = `set_config('synchronous_commit', 'off', true) AS lease_commit`;

/** The `, <DURABLE_COMMIT>` select-list tail of a chain write, or nothing when it is turned off. */
export const durableTail = (durable: boolean): string => (durable ? `, ${DURABLE_COMMIT}` : '');

/** The statements whose text depends only on the table prefix. */
export interface Statements {
  readonly get: string;
  readonly upsert: string;
  readonly delete: string;
  readonly deletePortal: string;
  readonly lock: string;
  readonly lockAndGet: string;
  readonly release: string;
  readonly renew: string;
  readonly acquire: string;
}

export function statements(n: SchemaNames, durable = true): Statements {
  const tail = durableTail(durable);
  const columns = DATA_FIELDS.map((field) => COLUMNS[field]);
  const nulls = columns.map((column) => `${column} = NULL`).join(', ');
  return {
    get: `SELECT * FROM ${n.records} WHERE member_id = $1 AND chain = $2 AND NOT deleted`,
    // A tombstone (deleted row) is revived with its version + 1: versions never repeat for a key.
    upsert: `WITH w AS (
        INSERT INTO ${n.records} AS r (member_id, chain, version, deleted, ${columns.join(', ')})
        VALUES ($2, $3, 1, false, ${columns.map((_, i) => `$${i + 4}`).join(', ')})
        ON CONFLICT (member_id, chain) DO UPDATE SET version = r.version + 1, deleted = false,
          ${columns.map((column) => `${column} = EXCLUDED.${column}`).join(', ')}
        WHERE r.version < ${MAX_VERSION}
        RETURNING r.*)
      SELECT w.*, ${NOTIFY('w')}${tail} FROM w`,
    // Deleting keeps the row and its version, with every token and field gone.
    delete: `WITH w AS (
        UPDATE ${n.records} AS r SET deleted = true, ${nulls}
        WHERE r.member_id = $2 AND r.chain = $3 AND NOT r.deleted
        RETURNING r.member_id, r.chain, r.version, r.deleted)
      SELECT w.version, ${NOTIFY('w')}${tail} FROM w`,
    deletePortal: `WITH w AS (
        UPDATE ${n.records} AS r SET deleted = true, ${nulls}
        WHERE r.member_id = $2 AND NOT r.deleted RETURNING 1),
      c AS (SELECT count(*) AS n FROM w)
      SELECT c.n, pg_notify($1, json_build_object('memberId', $2::text, 'chain', NULL, 'version', NULL, 'deleted', true)::text)${tail}
      FROM c WHERE c.n > 0`,
    // Takes a free or lapsed lease in one statement; a live one makes the upsert's WHERE false.
    lock: `INSERT INTO ${n.locks} AS l (member_id, chain, token, expires_at) VALUES ($1, $2, $3, ${NOW_MS} + $4)
      ON CONFLICT (member_id, chain) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
      WHERE l.expires_at <= ${NOW_MS}
      RETURNING l.expires_at, ${LIGHT_COMMIT}`,
    // tryLockAndGet in one statement (one implicit transaction, no session state: it works through a
    // transaction pooler). The lease as in `lock`; then the record, read by a LATERAL subquery that
    // refers to the lease's row, so it runs after the insert, and with FOR SHARE, so it answers the
    // newest committed version of the row rather than the one in the statement's snapshot: a
    // previous holder whose write and release both committed after this statement began is
    // seen (its release is what let the insert through). The one row always comes back; with no
    // lease its lease_expires_at is null, with no record its version is null. Nothing here holds a
    // token, so the transaction commits without waiting for its WAL flush (LIGHT_COMMIT).
    lockAndGet: `WITH l AS (
        INSERT INTO ${n.locks} AS l (member_id, chain, token, expires_at) VALUES ($1, $2, $3, ${NOW_MS} + $4)
        ON CONFLICT (member_id, chain) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
        WHERE l.expires_at <= ${NOW_MS}
        RETURNING l.expires_at, true AS taken)
      SELECT k.expires_at AS lease_expires_at, r.*, ${LIGHT_COMMIT}
      FROM (SELECT 1) AS one
      LEFT JOIN l AS k ON true
      LEFT JOIN LATERAL (
        SELECT * FROM ${n.records} AS c
        WHERE c.member_id = $1 AND c.chain = $2 AND NOT c.deleted AND coalesce(k.taken, true)
        FOR SHARE) AS r ON true`,
    release: `DELETE FROM ${n.locks} WHERE member_id = $1 AND chain = $2 AND token = $3 RETURNING ${LIGHT_COMMIT}`,
    renew: `UPDATE ${n.locks} SET expires_at = ${NOW_MS} + $4
      WHERE member_id = $1 AND chain = $2 AND token = $3 AND expires_at > ${NOW_MS} RETURNING expires_at, ${LIGHT_COMMIT}`,
    acquire: budgetStatement(n.budgets),
  };
}

/**
 * One GCRA step in one statement, by the database's clock ($1 key, $2 interval ms, $3 cost, $4 span
 * ms, $5 longest granted wait, $6 floor offset): a new key takes the values computed in the SELECT,
 * an existing one is moved on from its stored arrival time (the arithmetic of gcra() in
 * src/store/budget-math.ts). The conflicting row is locked by the upsert, so concurrent steps serialise.
 */
function budgetStatement(table: string): string {
  const base = `greatest(b.tat, EXCLUDED.now_ms, EXCLUDED.now_ms + $6::float8)`;
  const wait = `greatest(0, ${base} + $3::float8 * $2::float8 - $4::float8 - EXCLUDED.now_ms)`;
  return `INSERT INTO ${table} AS b (key, tat, now_ms, wait_ms, granted)
    SELECT $1::text, CASE WHEN f.w <= $5::float8 THEN f.base + $3::float8 * $2::float8 ELSE f.base END, f.n, f.w, f.w <= $5::float8
    FROM (SELECT t.n, t.base, greatest(0, t.base + $3::float8 * $2::float8 - $4::float8 - t.n) AS w
      FROM (SELECT c.n, greatest(c.n, c.n + $6::float8) AS base
        FROM (SELECT extract(epoch from clock_timestamp())::float8 * 1000 AS n) c) t) f
    ON CONFLICT (key) DO UPDATE SET
      tat = CASE WHEN ${wait} <= $5::float8 THEN ${base} + $3::float8 * $2::float8 ELSE ${base} END,
      now_ms = EXCLUDED.now_ms, wait_ms = ${wait}, granted = ${wait} <= $5::float8
    RETURNING wait_ms, granted, ${LIGHT_COMMIT}`;
}
