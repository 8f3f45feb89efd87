// The slice of the `pg` driver this adapter uses, as structural types (so the published d.ts needs no
// @types/pg), and the lazy loader: `pg` is an optional peer, imported only when a store first needs it.

import { StoreError } from '../../errors.js';

/** What a query answers, as far as this adapter reads it. */
export interface PgQueryResult {
  /** The rows, one object per row keyed by column name. */
  readonly rows: readonly Record<string, unknown>[];
  /** How many rows the command touched, when the driver reports it. */
  readonly rowCount: number | null;
}

/** A client checked out of a pool: what `pg.PoolClient` offers and this adapter uses. */
export interface PgPoolClientLike {
  /** Runs one statement with positional parameters (`$1`, `$2`, ...). */
  query(text: string, values?: unknown[]): Promise<PgQueryResult>;
  /** Returns the client to its pool; with an error, the pool discards the connection instead. */
  release(error?: Error | boolean): void;
}

/**
 * A ready connection pool: the part of `pg.Pool` (node-postgres 8) the store uses. Any `pg.Pool`
 * fits; the type is structural so that this package's declarations do not need `@types/pg`.
 */
export interface PgPoolLike {
  /** Runs one statement on a pooled connection. */
  query(text: string, values?: unknown[]): Promise<PgQueryResult>;
  /** Checks a connection out for a transaction. */
  connect(): Promise<PgPoolClientLike>;
  /** Closes every connection of the pool. */
  end(): Promise<void>;
  /**
   * The configuration the pool was built with. The change feed opens its own connection (never one
   * of the pool's) with it.
   */
  readonly options?: object | undefined;
}

/** A notification received on a `LISTEN` connection. */
export interface PgNotification {
  /** The channel it was sent on. */
  readonly channel: string;
  /** The payload text, if any. */
  readonly payload?: string | undefined;
}

/** A single dedicated connection (`pg.Client`), used by the change feed for `LISTEN`. */
export interface PgClientLike {
  connect(): Promise<void>;
  query(text: string, values?: unknown[]): Promise<PgQueryResult>;
  end(): Promise<void>;
  on(event: 'notification', listener: (message: PgNotification) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}

/** The constructors this adapter takes from the `pg` module. */
export interface PgDriver {
  readonly Pool: new (config: Record<string, unknown>) => PgPoolLike & {
    on(event: 'error', listener: (error: Error) => void): unknown;
  };
  readonly Client: new (config: Record<string, unknown>) => PgClientLike;
}

let loaded: Promise<PgDriver> | undefined;

/**
 * Imports the `pg` driver once (per process) and returns its constructors. A missing driver
 * becomes a {@link StoreError} that says what to install. `specifier` exists for tests.
 */
export function loadDriver(specifier = 'pg'): Promise<PgDriver> {
  if (specifier !== 'pg') return importDriver(specifier);
  loaded ??= importDriver(specifier).catch((error: unknown) => {
    loaded = undefined;
    throw error;
  });
  return loaded;
}

async function importDriver(specifier: string): Promise<PgDriver> {
  let module: Record<string, unknown>;
  try {
    module = (await import(specifier)) as Record<string, unknown>;
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
    throw new StoreError(
      missing
        ? 'PostgresTokenStore needs the PostgreSQL driver: npm install pg'
        : 'PostgresTokenStore could not load the PostgreSQL driver (pg); reinstall it with npm install pg',
      { cause: error },
    );
  }
  // The ESM entry of pg exports Pool and Client by name; a CommonJS build may only have `default`.
  const candidate = (typeof module['Pool'] === 'function' ? module : module['default']) as Partial<PgDriver> | undefined;
  if (typeof candidate?.Pool !== 'function' || typeof candidate.Client !== 'function') {
    throw new StoreError('The installed pg module does not export Pool and Client; install pg 8 (npm install pg@8)');
  }
  return { Pool: candidate.Pool, Client: candidate.Client };
}
