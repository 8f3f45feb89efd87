// The SQLite store's connection: opening the database once (and again after a failure), the schema
// setup, the prepared-statement cache, and the BEGIN IMMEDIATE transaction every write runs in.

import { StoreError } from '../../errors.js';
import { openOwnedDatabase, toStoreError, type SqliteDatabase, type SqliteStatement } from './driver.js';
import { checkSchema, migrate } from './schema.js';

/** One store's database: opened on first use, closed (when the store opened it) by {@link SqliteConnection.close}. */
export class SqliteConnection {
  readonly #given: SqliteDatabase | undefined;
  readonly #filename: string | undefined;
  readonly #busyTimeoutMs: number;
  readonly #tablePrefix: string;
  readonly #createSchema: boolean;
  readonly #statements = new Map<string, SqliteStatement>();
  #opening: Promise<SqliteDatabase> | undefined;
  #closed = false;

  /**
   * `given` is a database the caller owns; otherwise the store opens (and owns) `filename`. With
   * `createSchema` false nothing is created: the file and the schema must be there.
   */
  constructor(given: SqliteDatabase | undefined, filename: string | undefined, busyTimeoutMs: number, tablePrefix: string, createSchema = true) {
    this.#given = given;
    this.#filename = filename;
    this.#busyTimeoutMs = busyTimeoutMs;
    this.#tablePrefix = tablePrefix;
    this.#createSchema = createSchema;
  }

  /**
   * Closes the database if the store opened it (a `database` passed in stays open). Later calls
   * reject with a {@link StoreError}. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const opening = this.#opening;
    this.#opening = undefined;
    this.#statements.clear();
    if (opening === undefined || this.#given !== undefined) return;
    const database = await opening.catch(() => undefined);
    if (database?.open === true) database.close();
  }

  /** The database, opened and migrated; the next call after a failure tries again. */
  open(): Promise<SqliteDatabase> {
    if (this.#closed) return Promise.reject(new StoreError('SqliteTokenStore is closed', { transient: false }));
    this.#opening ??= this.#connect().catch((error: unknown) => {
      this.#opening = undefined;
      throw error;
    });
    return this.#opening;
  }

  async #connect(): Promise<SqliteDatabase> {
    const given = this.#given;
    const where = given === undefined ? `file ${this.#filename as string}` : 'the given database';
    const check = (database: SqliteDatabase): void => checkSchema(database, this.#tablePrefix, where);
    const database =
      given ?? (await openOwnedDatabase(this.#filename as string, this.#busyTimeoutMs, this.#createSchema ? undefined : { check }));
    if (this.#closed) {
      if (given === undefined) database.close();
      throw new StoreError('SqliteTokenStore is closed', { transient: false });
    }
    try {
      // An owned file was checked as it opened; a given database is checked here.
      if (this.#createSchema) migrate(database, this.#tablePrefix);
      else if (given !== undefined) check(database);
    } catch (error) {
      if (given === undefined) database.close();
      throw toStoreError('schema setup', error);
    }
    return database;
  }

  /** `sql` prepared once per connection. */
  statement(database: SqliteDatabase, sql: string): SqliteStatement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = database.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** Runs `body`, turning what it throws into a {@link StoreError} naming `operation`. */
  guard<T>(operation: string, memberId: string | undefined, body: () => T): T {
    try {
      return body();
    } catch (error) {
      throw toStoreError(operation, error, memberId);
    }
  }

  /** Runs `body` in a BEGIN IMMEDIATE transaction: it waits for (at most the busy timeout) and then excludes every other writer. */
  write<T>(database: SqliteDatabase, operation: string, memberId: string, body: () => T): T {
    return this.guard(operation, memberId, () => {
      this.statement(database, 'BEGIN IMMEDIATE').run();
      try {
        const result = body();
        this.statement(database, 'COMMIT').run();
        return result;
      } catch (error) {
        try {
          if (database.inTransaction) this.statement(database, 'ROLLBACK').run();
        } catch {
          // The original error says more; SQLite rolls back by itself when the connection closes.
        }
        throw error;
      }
    });
  }
}
