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
    const what = hint !== undefined && error.transient ? ` (${hint})` : '';
    return `${scrub(error.message)}${what}`;
  }
  if (error instanceof PortalTokensError) return `${scrub(error.message)} [${error.code}]`;
  if (error instanceof Error) return scrub(error.message);
  return scrub(String(error));
}
