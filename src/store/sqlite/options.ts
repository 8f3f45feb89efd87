// Options of SqliteTokenStore: a database file the store opens and owns, or a ready connection; and
// their checks.

import { checkOneOf } from '../adapter-options.js';
import type { SqliteDatabase } from './driver.js';
import { checkTablePrefix, DEFAULT_TABLE_PREFIX } from './schema.js';

/** Options shared by both ways of giving {@link SqliteTokenStore} its database. */
export interface SqliteTokenStoreCommonOptions {
  /**
   * Prefix of the store's table names (`<prefix>_chains`, `<prefix>_locks`, `<prefix>_meta`: one
   * underscore between, so `app` and `app_` name the same tables), so several stores can share one
   * database. Letters, digits and underscores.
   * @defaultValue `'b24pt_'`
   */
  readonly tablePrefix?: string | undefined;
  /**
   * How long a statement waits for another connection's write lock before failing with a transient
   * `StoreError`, in milliseconds. Applies to a database the store opens itself.
   * @defaultValue 5000
   */
  readonly busyTimeoutMs?: number | undefined;
  /**
   * The clock lock leases are measured against, unix milliseconds. Every process sharing the
   * database must use the same time (the real clock, in production).
   * @defaultValue `Date.now`
   */
  readonly now?: (() => number) | undefined;
  /**
   * Whether the store creates the database file and its tables and migrates them to this release's
   * schema (in `ready()` or the first call). Turn it off where the store must change nothing: a
   * read-only tool (the CLI's `status` does), or a schema managed apart. Off, a missing file is not
   * created (better-sqlite3's `fileMustExist`), no `CREATE` or `ALTER` runs, and the journal mode
   * is left alone until the tables are found; missing tables (or file) reject `ready()` and every
   * other call with a `StoreError` whose `reason` is `'schema-missing'`, naming what was looked for;
   * another schema version rejects with `reason` `'schema-version'`. Records are read and written
   * as usual when the tables are there. (Named for what it turns off: `readOnly` would promise that
   * writes are refused, and they are not.)
   * @defaultValue true
   */
  readonly createSchema?: boolean | undefined;
}

/** Open (and own) a database file. */
export interface SqliteTokenStoreFileOptions extends SqliteTokenStoreCommonOptions {
  /**
   * Path of the database file. Created with mode 0600 if missing (it holds tokens; not with
   * `createSchema: false`); its directory must exist. The store opens it in WAL mode and closes it in {@link SqliteTokenStore.close}.
   */
  readonly filename: string;
  /** Not with `filename`. */
  readonly database?: undefined;
}

/** Use a database connection the caller opened (and will close). */
export interface SqliteTokenStoreDatabaseOptions extends SqliteTokenStoreCommonOptions {
  /**
   * A ready `better-sqlite3` `Database`. The store never closes it and leaves its settings (journal
   * mode, busy timeout) as they are; use WAL mode and a busy timeout when processes share the file.
   */
  readonly database: SqliteDatabase;
  /** Not with `database`. */
  readonly filename?: undefined;
}

/** Options of {@link SqliteTokenStore}: a `filename` to open, or a ready `database`. */
export type SqliteTokenStoreOptions = SqliteTokenStoreFileOptions | SqliteTokenStoreDatabaseOptions;

/** The options after checking, defaults applied. */
export interface CheckedOptions {
  readonly filename: string | undefined;
  readonly database: SqliteDatabase | undefined;
  readonly tablePrefix: string;
  readonly busyTimeoutMs: number;
  readonly now: () => number;
  readonly createSchema: boolean;
}

/** Checks the constructor's options; every mistake is a TypeError naming the option. */
export function checkOptions(options: SqliteTokenStoreOptions): CheckedOptions {
  checkOneOf(options, 'filename', 'database');
  const { filename, database, tablePrefix = DEFAULT_TABLE_PREFIX, busyTimeoutMs = 5000, now = Date.now, createSchema = true } = options;
  if (filename !== undefined && (typeof filename !== 'string' || filename.length === 0 || filename.includes('\0'))) {
    throw new TypeError('options.filename must be a non-empty path');
  }
  if (filename === ':memory:') throw new TypeError('options.filename cannot be :memory: (use MemoryTokenStore)');
  if (database !== undefined && (typeof database !== 'object' || typeof database.prepare !== 'function')) {
    throw new TypeError('options.database must be a better-sqlite3 Database');
  }
  checkTablePrefix(tablePrefix);
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new TypeError('options.busyTimeoutMs must be a non-negative integer');
  }
  if (typeof now !== 'function') throw new TypeError('options.now must be a function');
  if (typeof createSchema !== 'boolean') throw new TypeError('options.createSchema must be a boolean');
  return { filename, database, tablePrefix, busyTimeoutMs, now, createSchema };
}
