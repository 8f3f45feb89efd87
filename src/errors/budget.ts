// The error of the request budget: a REST request that would have waited past its limit.

import { ErrorCode, PortalTokensError, type PortalTokensErrorOptions } from './base.js';
import { escapeText } from './escape.js';

/**
 * A REST request was not sent: the portal's shared request budget (Bitrix24's leaky bucket or a
 * method's operating time) would have made it wait longer than allowed (the pool's
 * `maxBudgetWaitMs`, or the time left before the request's `AbortSignal` fired). Nothing was taken
 * from the budget; retrying after `waitMs` is likely to go through.
 */
export class RateLimitedError extends PortalTokensError {
  readonly code = ErrorCode.RateLimited;
  /** How long the request would have had to wait, ms. */
  readonly waitMs: number;
  /** What held it: the request budget (`'rate'`), a method's operating time, or an abort. */
  readonly reason: 'rate' | 'operating' | 'aborted';
  constructor(memberId: string, waitMs: number, reason: 'rate' | 'operating' | 'aborted', options: PortalTokensErrorOptions = {}) {
    super(
      reason === 'aborted'
        ? `A REST request of portal ${escapeText(memberId)} was aborted while it waited for the request budget`
        : `A REST request of portal ${escapeText(memberId)} would wait ${Math.ceil(waitMs)} ms for the ${reason === 'rate' ? 'request budget' : 'operating-time budget'}, past its limit`,
      { ...options, memberId },
    );
    this.waitMs = waitMs;
    this.reason = reason;
  }
}
