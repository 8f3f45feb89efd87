/**
 * `b24-portal-tokens/stores/postgres`: {@link PostgresTokenStore}, a token store on PostgreSQL shared
 * by every worker that opens the same database. Needs the optional peer dependency `pg`
 * (`npm install pg`), loaded only when a store first connects.
 * @packageDocumentation
 */
export type {
  PostgresConnectionStringOptions,
  PostgresPoolOptions,
  PostgresTokenStoreCommonOptions,
  PostgresTokenStoreOptions,
} from './options.js';
export { PostgresTokenStore } from './store.js';
export type { PgPoolClientLike, PgPoolLike, PgQueryResult } from './driver.js';
