// The `error` strings of Bitrix24's OAuth hosts and what each means for a portal's chain
// (docs/protocol.md, "OAuth errors and whose fault they are"). Facts only: no I/O; the OAuth client
// and the coordinator act on the classification.

/**
 * What an OAuth `error` string says:
 * - `chain`: the portal's chain is dead (`invalid_grant`, `NOT_INSTALLED`); a reinstall or a new
 *   authorization revives it;
 * - `payment`: the portal has not paid (`PAYMENT_REQUIRED`); may clear once its admin pays;
 * - `credentials`: the app's own `client_id` / `client_secret` are refused (`invalid_client`,
 *   `wrong_client`); about the app, not the portal;
 * - `request`: anything else (`invalid_request`, `invalid_scope`, ...): the request was wrong.
 */
export type OAuthErrorKind = 'chain' | 'payment' | 'credentials' | 'request';

/** The `error` strings after which the portal's chain is dead. */
export const CHAIN_OAUTH_ERRORS: readonly string[] = Object.freeze(['invalid_grant', 'NOT_INSTALLED']);

/** The `error` string of an unpaid portal. */
export const PAYMENT_OAUTH_ERROR = 'PAYMENT_REQUIRED';

/** The `error` strings that refuse the app's own credentials. */
export const CREDENTIAL_OAUTH_ERRORS: readonly string[] = Object.freeze(['invalid_client', 'wrong_client']);

/**
 * The `error` strings after which a portal's chain is dead for good: the `chain` kind. Credential
 * errors are about the app and change no portal; `PAYMENT_REQUIRED` may clear. Kept as one list so
 * `OAuthRejectedError.terminal` and the coordinator agree.
 */
export const TERMINAL_OAUTH_ERRORS: readonly string[] = CHAIN_OAUTH_ERRORS;

/** Classifies an OAuth `error` string (compared exactly: Bitrix24 mixes cases between codes). */
export function classifyOAuthError(error: string): OAuthErrorKind {
  if (CHAIN_OAUTH_ERRORS.includes(error)) return 'chain';
  if (error === PAYMENT_OAUTH_ERROR) return 'payment';
  if (CREDENTIAL_OAUTH_ERRORS.includes(error)) return 'credentials';
  return 'request';
}

/** Whether the library treats `error` as terminal (see {@link TERMINAL_OAUTH_ERRORS}). */
export function isTerminalOAuthError(error: string): boolean {
  return TERMINAL_OAUTH_ERRORS.includes(error);
}

/**
 * Whether an OAuth host's HTTP status means "try again later" whatever the body says: 429 and 5xx.
 * Network failures and timeouts (no status) are transient as well.
 */
export function isTransientOAuthStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** The fallback for an `error` value that does not look like an error code. */
export const UNKNOWN_OAUTH_ERROR = 'unknown_error';

/**
 * A server-supplied `error` value made safe to put in a message or an answer: kept when it looks
 * like an error code (1 to 64 of `A-Z a-z 0-9 _ . : -`), {@link UNKNOWN_OAUTH_ERROR} otherwise.
 */
export function sanitizeOAuthError(value: unknown): string {
  return typeof value === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(value) ? value : UNKNOWN_OAUTH_ERROR;
}
