// The SQLite driver seen from the store: structural types for the part of better-sqlite3 it uses
// (so the published types need no @types/better-sqlite3), lazy loading of the optional peer, opening
// an owned database file (mode 0600, WAL), and turning driver errors into StoreErrors.

import { open as openFile, stat } from 'node:fs/promises';
import { StoreError } from '../../errors.js';

/** The outcome of a write statement: how many rows it changed. */
export interface SqliteRunResult {
  /** Rows inserted, updated or deleted. */
  readonly changes: number;
}

/**
 * The part of a prepared statement the SQLite store uses. A `better-sqlite3` `Statement` fits it;
 * written out here so that using the store needs no `@types/better-sqlite3`.
 */
export interface SqliteStatement {
  /** Runs a statement that returns no rows. */
  run(...params: unknown[]): SqliteRunResult;
  /** Runs a query and returns its first row, or `undefined`. */
  get(...params: unknown[]): unknown;
  /** Runs a query and returns every row. */
  all(...params: unknown[]): unknown[];
}

/**
 * The part of a `better-sqlite3` `Database` the SQLite store uses. Pass a ready `new Database(...)`
 * as the store's `database` option; any object with these members works.
 */
export interface SqliteDatabase {
  /** Compiles one SQL statement. */
  prepare(source: string): SqliteStatement;
  /** Runs SQL text that may hold several statements and returns no rows. */
  exec(source: string): unknown;
  /** Closes the connection. */
  close(): unknown;
  /** Whether the connection is open. */
  readonly open: boolean;
  /** Whether a transaction is in progress on this connection. */
  readonly inTransaction: boolean;
}

/** The `better-sqlite3` `Database` constructor, as far as the store uses it. */
type DriverConstructor = new (filename: string, options?: { timeout?: number; fileMustExist?: boolean }) => SqliteDatabase;

const DRIVER = 'better-sqlite3';
let loading: Promise<DriverConstructor> | undefined;

/**
 * Loads `better-sqlite3` on first use, so that importing this library (or another store) never
 * loads it. A missing or broken driver becomes one StoreError that says what to install.
 */
export function loadDriver(): Promise<DriverConstructor> {
  loading ??= import('better-sqlite3').then(
    (loaded: unknown) => {
      const namespace = loaded as { default?: unknown };
      const constructor = typeof namespace.default === 'function' ? namespace.default : loaded;
      if (typeof constructor !== 'function') throw new TypeError(`${DRIVER} exports no Database constructor`);
      return constructor as DriverConstructor;
    },
  );
  return loading.catch((cause: unknown) => {
    loading = undefined; // a later call may find it installed
    throw new StoreError(
      `SqliteTokenStore needs the optional peer dependency ${DRIVER}, which could not be loaded: ` +
        `run \`npm install ${DRIVER}\``,
      { cause, transient: false },
    );
  });
}

/** The errno codes of a file that cannot be created or written, with what to tell the person. */
const FILE_PROBLEMS: Readonly<Record<string, string>> = {
  ENOENT: 'its directory does not exist',
  ENOTDIR: 'a part of its path is not a directory',
  EISDIR: 'the path is a directory',
  EACCES: 'permission denied (a read-only location?)',
  EPERM: 'permission denied (a read-only location?)',
  EROFS: 'the file system is read-only',
};

/** How {@link openOwnedDatabase} treats a file that is not a store yet. */
export interface OpenExisting {
  /**
   * Runs on the open connection before anything is changed (the journal mode included); throws
   * when the file is not the store's. Given, the file must exist: it is never created.
   */
  readonly check: (database: SqliteDatabase) => void;
}

/**
 * Opens (creating it with mode 0600 if missing) the database file the store owns, in WAL mode with
 * a busy timeout and full fsync. The file is created by us, not by SQLite, so its mode is ours;
 * SQLite gives the -wal and -shm files the database file's mode. With `existing`, a missing file
 * is a `'schema-missing'` StoreError and `existing.check` runs before the first change.
 */
export async function openOwnedDatabase(filename: string, busyTimeoutMs: number, existing?: OpenExisting): Promise<SqliteDatabase> {
  const Driver = await loadDriver();
  try {
    if (existing === undefined) {
      // 'a': create if missing (mode 0600, less the umask), never truncate; opened for writing so a
      // read-only file or location fails here, with a clear message, rather than at the first write.
      const handle = await openFile(filename, 'a', 0o600);
      await handle.close();
    } else if (!(await stat(filename)).isFile()) {
      throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
    }
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? '';
    if (existing !== undefined && code === 'ENOENT') {
      throw new StoreError(`SQLite database file ${filename} does not exist: check the path (createSchema is off: nothing was created)`, {
        cause,
        transient: false,
        reason: 'schema-missing',
      });
    }
    const problem = FILE_PROBLEMS[code] ?? `it cannot be opened for writing (${/^E[A-Z]+$/.test(code) ? code : 'I/O error'})`;
    throw new StoreError(`SQLite database file ${filename} cannot be used: ${problem}`, { cause, transient: false });
  }
  let database: SqliteDatabase;
  try {
    // fileMustExist: a file removed since the check above is not created by SQLite either.
    database = new Driver(filename, existing === undefined ? { timeout: busyTimeoutMs } : { timeout: busyTimeoutMs, fileMustExist: true });
  } catch (cause) {
    throw toStoreError('open', cause);
  }
  try {
    existing?.check(database);
    setWal(database, busyTimeoutMs);
    // Every commit is fsynced before the call returns: a refresh token is single-use, so losing a
    // committed refresh to a power cut would lose the portal's chain (WAL's NORMAL level may).
    database.prepare('PRAGMA synchronous = FULL').run();
    // Overwrite deleted and replaced content with zeros, so a tombstone's tokens do not linger in
    // free pages of the file.
    database.prepare('PRAGMA secure_delete = ON').run();
    return database;
  } catch (cause) {
    database.close();
    throw toStoreError('open', cause);
  }
}

/**
 * Switches to WAL. Several processes opening a new file at once may find it busy; the change needs a
 * moment alone with the file, so retry (the busy handler does not cover every path of this pragma).
 */
function setWal(database: SqliteDatabase, busyTimeoutMs: number): void {
  const deadline = Date.now() + busyTimeoutMs;
  for (;;) {
    try {
      const row = database.prepare('PRAGMA journal_mode = WAL').get() as { journal_mode?: unknown } | undefined;
      if (row?.journal_mode !== 'wal') {
        throw new StoreError('SQLite database could not be switched to WAL mode', { transient: false });
      }
      return;
    } catch (cause) {
      if (!isBusy(cause) || Date.now() >= deadline) throw cause;
      sleepSync(10);
    }
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The SQLite result code of a driver error (`SQLITE_BUSY`, `SQLITE_CORRUPT`, ...), if it has one. */
export function sqliteCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^SQLITE_[A-Z0-9_]+$/.test(code) ? code : undefined;
}

/** Whether a driver error says another connection holds the lock the statement needed. */
export function isBusy(error: unknown): boolean {
  const code = sqliteCode(error);
  return code !== undefined && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/**
 * Wraps a driver error in a StoreError. The message holds the operation and the SQLite result code
 * only: a driver message can quote values (tokens), so it stays in `cause`.
 */
export function toStoreError(operation: string, cause: unknown, memberId?: string): StoreError {
  if (cause instanceof StoreError) return cause;
  const code = sqliteCode(cause);
  const options = { cause, memberId, transient: false };
  if (isBusy(cause)) {
    return new StoreError(`SQLite database is locked by another connection (${code}) during ${operation}; retry later`, {
      ...options,
      transient: true,
    });
  }
  if (code === undefined) {
    const closed = cause instanceof TypeError && /not open/i.test(cause.message);
    const what = closed ? 'the database connection is closed' : 'an unexpected driver error';
    return new StoreError(`SQLite store failed during ${operation}: ${what}`, options);
  }
  const kind = code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB'
    ? 'the file is corrupt or not a SQLite database'
    : code.startsWith('SQLITE_READONLY')
      ? 'the database is read-only'
      : code === 'SQLITE_FULL'
        ? 'the disk is full'
        : code.startsWith('SQLITE_CANTOPEN')
          ? 'the database file cannot be opened'
          : code === 'SQLITE_MISUSE'
            ? 'the driver was misused'
            : 'the driver reported an error';
  return new StoreError(`SQLite store failed during ${operation}: ${kind} (${code})`, options);
}
