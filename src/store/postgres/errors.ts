// Turns a driver error into a StoreError. The driver's message and `detail` can quote parameter values
// (tokens), so none of its text reaches ours: only our own words, a Node error code or a SQLSTATE.

import { PortalTokensError, StoreError } from '../../errors.js';

/** Node socket errors that mean the database could not be reached or the connection broke. */
const TRANSIENT_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTCONN',
]);

/** SQLSTATEs that mean the server is going away, starting up or out of connections. */
const TRANSIENT_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '58000', '58030']);

/**
 * Errors of node-postgres that carry no code, recognised by their fixed wording (never copied
 * into our message): a connection dropped or a timeout of the pool or the client.
 */
const TRANSIENT_DRIVER_MESSAGES = [
  /connection terminated/i,
  /connection timeout/i,
  /timeout exceeded when trying to connect/i,
  /query read timeout/i,
  /not queryable/i,
  /client was closed and is not queryable/i,
  /cannot use a pool after calling end/i,
];

interface ErrorFacts {
  /** A Node error code or SQLSTATE, safe to show. */
  readonly code: string | undefined;
  readonly transient: boolean;
}

function factsOf(error: unknown, depth = 0): ErrorFacts {
  if (error === null || typeof error !== 'object' || depth > 4) return { code: undefined, transient: false };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (TRANSIENT_NODE_CODES.has(code)) return { code, transient: true };
    if (/^[0-9A-Z]{5}$/.test(code)) return { code: `SQLSTATE ${code}`, transient: code.startsWith('08') || TRANSIENT_SQLSTATES.has(code) };
  }
  // Node's happy-eyeballs connect reports every failed address inside an AggregateError.
  const inner = (error as { errors?: unknown }).errors;
  if (Array.isArray(inner)) {
    for (const item of inner) {
      const facts = factsOf(item, depth + 1);
      if (facts.transient) return facts;
    }
  }
  const message = (error as { message?: unknown }).message;
  if (typeof message === 'string' && TRANSIENT_DRIVER_MESSAGES.some((pattern) => pattern.test(message))) {
    return { code: undefined, transient: true };
  }
  const cause = (error as { cause?: unknown }).cause;
  if (cause !== undefined) return factsOf(cause, depth + 1);
  return { code: typeof code === 'string' && /^[A-Z0-9_]{2,40}$/.test(code) ? code : undefined, transient: false };
}

/** Whether `error` means the database was unreachable (retrying later may work). */
export function isTransient(error: unknown): boolean {
  if (error instanceof StoreError) return error.transient;
  return factsOf(error).transient;
}

/**
 * Wraps a failure of `operation` in a {@link StoreError}: this library's own errors pass through
 * unchanged; anything else keeps the driver's error only as `cause`. (Arguments are checked before
 * any query, so a TypeError here is the driver's and gets wrapped too.)
 */
export function storeFailure(error: unknown, operation: string, memberId?: string): Error {
  if (error instanceof PortalTokensError) return error;
  const { code, transient } = factsOf(error);
  const what = memberId === undefined ? operation : `${operation} portal ${memberId}`;
  const why = transient ? 'the database could not be reached' : 'the database refused the request';
  const hint =
    code === 'SQLSTATE 28P01' || code === 'SQLSTATE 28000'
      ? '; check the user and password'
      : code === 'SQLSTATE 53300'
        ? '; the server is out of connections: lower maxConnections, raise max_connections or use a pooler (docs/topologies.md)'
        : '';
  return new StoreError(`PostgreSQL token store failed to ${what}: ${why}${code === undefined ? '' : ` (${code})`}${hint}`, {
    cause: error,
    memberId,
    transient,
  });
}
