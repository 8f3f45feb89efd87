// The options of PostgresTokenStore, in their own module so the store's file stays about behaviour.

import type { Logger } from '../../logger.js';
import type { PgPoolLike } from './driver.js';

/** Options shared by both ways of building a {@link PostgresTokenStore}. */
export interface PostgresTokenStoreCommonOptions {
  /**
   * The prefix of the store's tables (`<prefix>_records`, `<prefix>_locks`, `<prefix>_meta`; `app_`
   * names the same tables as `app`, never `app__records`) and of its notification channel
   * (`<prefix>_changes`): 1 to 40 characters of `a-z`, `0-9` and `_`, not starting with a digit.
   * Processes that share a prefix (and database) share records and locks.
   * @defaultValue `'b24pt'`
   */
  readonly tablePrefix?: string | undefined;
  /**
   * A direct connection to PostgreSQL for the change feed's `LISTEN` (a `postgres://` URL), when the
   * store's own connections go through a transaction-pooling PgBouncer (or a hosted pooler), where
   * `LISTEN` cannot work. Default: the feed connects like the store does.
   */
  readonly listenConnectionString?: string | undefined;
  /**
   * How long a probe notification may take to come back on the change feed, ms. The feed sends one
   * when it starts (so `pool.ready()` knows) and then every `feedProbeIntervalMs`; one that does not
   * come back makes the feed report itself lost (the pool then re-reads before reusing a client)
   * and the store warn once. @defaultValue 2000
   */
  readonly feedProbeTimeoutMs?: number | undefined;
  /**
   * Chain writes (every write of a record) commit with `synchronous_commit` at least `on`, raised
   * for that transaction only when the server or role runs with `off` or `local`: so a rotation is
   * acknowledged only once it is flushed, and once the synchronous standbys named in
   * `synchronous_standby_names` have it, when there are any. Stronger settings are kept. Turn it off
   * only if losing a just-rotated chain on a crash or failover is acceptable. See docs/topologies.md.
   * @defaultValue true
   */
  readonly durableChainWrites?: boolean | undefined;
  /**
   * Whether the store creates its tables and migrates them to this release's schema (in `ready()`
   * or the first call). Turn it off where the store must change nothing about the database: a
   * read-only tool (the CLI's `status` does), or tables managed by a migration process of their own.
   * Off, the store runs no `CREATE` or `ALTER` at all; when its tables are missing (a mistyped
   * `tablePrefix`, the wrong database) `ready()` and every other call reject with a `StoreError`
   * whose `reason` is `'schema-missing'`, naming the tables and the database; tables of another
   * schema version reject with `reason` `'schema-version'`. Records are read and written as usual
   * when the tables are there. (Named for what it turns off: `readOnly` would promise that writes
   * are refused, and they are not.)
   * @defaultValue true
   */
  readonly createSchema?: boolean | undefined;
  /** How often a running change feed probes itself, ms. @defaultValue 30000 */
  readonly feedProbeIntervalMs?: number | undefined;
  /**
   * Where the store's warnings go (a dead change feed, a server out of connections).
   * @defaultValue the console (warnings only)
   */
  readonly logger?: Logger | undefined;
}

/** Builds the store from a connection string; the store then owns its pool and closes it in `close()`. */
export interface PostgresConnectionStringOptions extends PostgresTokenStoreCommonOptions {
  /**
   * A `postgres://user:password@host:port/database` URL. Percent-encode a user name or password
   * that holds URL-special characters (`encodeURIComponent(password)`): `@ : / # % ? &`.
   */
  readonly connectionString: string;
  /** Not allowed together with `connectionString`. */
  readonly pool?: undefined;
  /**
   * The most connections the store's pool opens; the change feed takes one more. Kept small so that
   * a fleet fits a default server: workers x (maxConnections + 1) must stay below the server's
   * `max_connections` (100 by default, 3 of them reserved) minus what else uses it. See the sizing
   * section of docs/several-workers.md. @defaultValue 2
   */
  readonly maxConnections?: number | undefined;
  /**
   * How long opening a connection may take before the call fails with a transient
   * `StoreError`. @defaultValue 10000
   */
  readonly connectTimeoutMs?: number | undefined;
}

/**
 * Builds the store on a ready `pg.Pool` that the application owns: `close()` leaves it open. Give the
 * pool an `'error'` listener (node-postgres requires one), as for any other use of it.
 */
export interface PostgresPoolOptions extends PostgresTokenStoreCommonOptions {
  /** A `pg.Pool` (node-postgres 8). The change feed opens one extra connection with its options. */
  readonly pool: PgPoolLike;
  /** Not allowed together with `pool`. */
  readonly connectionString?: undefined;
}

/** Options of {@link PostgresTokenStore}: a connection string or a ready pool, plus a table prefix. */
export type PostgresTokenStoreOptions = PostgresConnectionStringOptions | PostgresPoolOptions;

