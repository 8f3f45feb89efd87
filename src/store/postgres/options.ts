// The options of PostgresTokenStore, in their own module so the store's file stays about behaviour.

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
  /** The most connections the store's pool opens. @defaultValue 10 */
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

