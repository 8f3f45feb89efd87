// The errors of the bounds on what a request or a remote host can make the process spend: the
// ceilings on public handlers' proofs, and the cap on the size of an answer read.

import { ErrorCode, PortalTokensError, type PortalTokensErrorOptions } from './base.js';

/**
 * A proof a public handler needed (a token request or an `app.info` call to an OAuth host, on
 * behalf of a lifecycle event or an app-page post) was not sent: a ceiling on proofs in flight or
 * per minute was reached, for the portal (`scope: 'portal'`) or for the whole process
 * (`scope: 'process'`); a handler answers it 429 with `Retry-After`. Nothing was sent and nothing changed; the same
 * request after `retryAfterMs` is likely to go through.
 */
export class ProofsThrottledError extends PortalTokensError {
  readonly code = ErrorCode.ProofsThrottled;
  /** Which ceiling was reached. */
  readonly scope: 'portal' | 'process';
  /** Which bound: proofs in flight at once, or proofs started in the current minute. */
  readonly bound: 'in-flight' | 'per-minute';
  /** When a retry is likely to be admitted, ms from now. */
  readonly retryAfterMs: number;
  /** The HTTP status a handler answers with. */
  readonly status = 429;
  constructor(
    memberId: string | undefined,
    scope: 'portal' | 'process',
    bound: 'in-flight' | 'per-minute',
    retryAfterMs: number,
    options: PortalTokensErrorOptions = {},
  ) {
    const who = memberId === undefined ? 'a request' : `portal ${JSON.stringify(memberId)}`;
    super(
      `Proof for ${who} refused: the ${scope === 'portal' ? "portal's" : "process's"} ceiling on proofs ${bound === 'in-flight' ? 'in flight' : 'per minute'} is reached; retry after ${Math.ceil(retryAfterMs / 1000)} s`,
      { ...options, memberId },
    );
    this.scope = scope;
    this.bound = bound;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * An answer was larger than allowed (the pool's `maxResponseBytes` for portal REST answers, a fixed
 * cap for OAuth hosts' answers): reading stopped at the cap and the connection was dropped, so the
 * answer never sat in memory whole. Nothing was changed.
 */
export class ResponseTooLargeError extends PortalTokensError {
  readonly code = ErrorCode.ResponseTooLarge;
  /** The cap that was exceeded, bytes. */
  readonly limitBytes: number;
  constructor(limitBytes: number, options: PortalTokensErrorOptions = {}) {
    super(`An answer exceeded ${limitBytes} bytes; it was not read further`, options);
    this.limitBytes = limitBytes;
  }
}
