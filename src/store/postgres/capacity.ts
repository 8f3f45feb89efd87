// A server out of connections (SQLSTATE 53300, `too many clients already`) refuses a connection
// before any statement runs, so the statement can be sent again safely: the store waits for a free
// connection slot (with jittered back-off, up to a bound), warns once naming what to change, and
// past the bound fails with its own StoreError.

import type { Logger } from '../../logger.js';

/** SQLSTATE `too_many_connections`: the server's `max_connections` (or a role's limit) is reached. */
const TOO_MANY_CLIENTS = '53300';
const FIRST_DELAY_MS = 25;
const MAX_DELAY_MS = 1_000;

/** Whether `error` (or an error it wraps) is the server refusing a connection for lack of slots. */
export function isTooManyClients(error: unknown, depth = 0): boolean {
  if (error === null || typeof error !== 'object' || depth > 4) return false;
  if ((error as { code?: unknown }).code === TOO_MANY_CLIENTS) return true;
  return isTooManyClients((error as { cause?: unknown }).cause, depth + 1);
}

/** The warning a store logs the first time the server refuses it a connection. */
export const TOO_MANY_CLIENTS_WARNING =
  'PostgreSQL refused a connection: too many clients (SQLSTATE 53300, max_connections reached). ' +
  'Every worker opens up to maxConnections connections plus one for the change feed: keep ' +
  'workers x (maxConnections + 1) below the server\'s max_connections, raise max_connections, or ' +
  'put PgBouncer in transaction mode in front of the database (with listenConnectionString for the feed); ' +
  'see docs/topologies.md. The store retries while waiting for a free connection.';

/** Retries operations the server refused for lack of connection slots. */
export class ConnectionRoom {
  readonly #waitMs: number;
  readonly #logger: Logger;
  #warned = false;

  /** `waitMs`: how long one operation may keep waiting for a free slot before it fails. */
  constructor(waitMs: number, logger: Logger) {
    this.#waitMs = waitMs;
    this.#logger = logger;
  }

  /** Whether the server has refused a connection (the warning was logged). */
  get refused(): boolean {
    return this.#warned;
  }

  /** Runs `operation`, again after a pause while the server answers `too many clients`, up to the bound. */
  async run<T>(operation: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#waitMs;
    for (let delay = FIRST_DELAY_MS; ; delay = Math.min(delay * 2, MAX_DELAY_MS)) {
      try {
        return await operation();
      } catch (error) {
        if (!isTooManyClients(error)) throw error;
        if (!this.#warned) {
          this.#warned = true;
          this.#logger.warn({ sqlstate: TOO_MANY_CLIENTS }, TOO_MANY_CLIENTS_WARNING);
        }
        const pause = delay / 2 + Math.random() * (delay / 2);
        if (Date.now() + pause > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }
}

