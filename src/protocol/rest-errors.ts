// Portal REST error bodies (docs/protocol.md, "Portal REST errors"): their two shapes, and the codes
// that concern tokens.

/**
 * The `error` code of a portal REST error body: v2 `{ error: 'x' }`, v3 `{ error: { code: 'x' } }`.
 * @returns the code, or `undefined` when `data` is neither shape.
 */
export function restErrorCode(data: unknown): string | undefined {
  if (data === null || typeof data !== 'object') return undefined;
  const error = (data as { error?: unknown }).error;
  if (typeof error === 'string') return error;
  if (error !== null && typeof error === 'object') {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** 401 `expired_token`: the access token expired; refresh and retry once. */
export const REST_EXPIRED_TOKEN = 'expired_token';

/** 401 `invalid_token`: the access token is dead (superseded by a refresh, or revoked). */
export const REST_INVALID_TOKEN = 'invalid_token';

/** Whether a REST error code says the access token the call carried is no longer usable. */
export function isRestTokenError(code: string | undefined): boolean {
  return code === REST_EXPIRED_TOKEN || code === REST_INVALID_TOKEN;
}
