// The command-line tool's errors and exit codes, and turning any thrown value into one safe line.

import { DecryptionError, PortalTokensError, StoreError } from '../errors.js';

/** Exit codes of `b24-portal-tokens`: scripts may rely on them. */
export const ExitCode = {
  /** Everything asked for was done. */
  Ok: 0,
  /** An operational failure: the store failed, or some records could not be handled. */
  Failure: 1,
  /** The command line was wrong: an unknown command or option, a malformed URL, a missing setting. */
  Usage: 2,
} as const;

/** An error the tool reports as one line, exiting with `exitCode`. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = ExitCode.Failure) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** A usage error (exit code 2). */
export function usageError(message: string): CliError {
  return new CliError(message, ExitCode.Usage);
}

/** Long opaque strings (tokens, keys; a member id is 32 characters) are cut out of any message the tool prints. */
const OPAQUE = /[A-Za-z0-9+/_=-]{40,}/g;

/** Removes anything that looks like a token or key from a message. */
export function scrub(message: string): string {
  return message.replace(OPAQUE, '[redacted]');
}

/**
 * One line for a thrown value: the library's typed errors keep their message (they never hold a
 * token) plus a hint of what to do; anything else keeps its message, scrubbed.
 */
export function describeFailure(error: unknown, hint?: string): string {
  if (error instanceof CliError) return scrub(error.message);
  if (error instanceof DecryptionError) {
    return `${scrub(error.message)} (check B24PT_KEYS: every key that wrote a stored value must be listed)`;
  }
  if (error instanceof StoreError) {
    // SQLSTATE 3D000: PostgreSQL reached, the database missing; a hint like the other connection errors.
    if (sqlStateOf(error) === '3D000') {
      return `${scrub(error.message)} (the database named in the URL does not exist: create it, for example with createdb, or fix the URL's path)`;
    }
    const what = hint !== undefined && error.transient ? ` (${hint})` : '';
    return `${scrub(error.message)}${what}`;
  }
  if (error instanceof PortalTokensError) return `${scrub(error.message)} [${error.code}]`;
  if (error instanceof Error) return scrub(error.message);
  return scrub(String(error));
}

/** The SQLSTATE of a PostgreSQL error anywhere along the `cause` chain, or `undefined`. */
function sqlStateOf(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current !== null && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && /[0-9]/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

