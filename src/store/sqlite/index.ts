/**
 * The SQLite token store, `b24-portal-tokens/stores/sqlite`: one database file shared by every
 * process of a machine, through the optional peer dependency `better-sqlite3`
 * (`npm install better-sqlite3`), which is loaded only when a store opens a file.
 * @packageDocumentation
 */
export { SqliteTokenStore } from './store.js';
export type {
  SqliteTokenStoreOptions,
  SqliteTokenStoreCommonOptions,
  SqliteTokenStoreFileOptions,
  SqliteTokenStoreDatabaseOptions,
} from './options.js';
export type { SqliteDatabase, SqliteStatement, SqliteRunResult } from './driver.js';
