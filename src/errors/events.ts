// Errors of the event layer: a body that failed to parse, an event that could not be proven genuine.

import { ErrorCode, PortalTokensError, type PortalTokensErrorOptions } from './base.js';

/**
 * Why an event failed to parse: {@link ErrorCode.InvalidEvent} or {@link ErrorCode.UnknownEvent}.
 * @inline
 */
export type InvalidEventCode = typeof ErrorCode.InvalidEvent | typeof ErrorCode.UnknownEvent;

/**
 * A lifecycle event or app-page request was malformed, too large, or named an unknown event.
 *
 * `field` names the offending field in Bitrix24's own spelling (`auth[expires]`, `event`, `body`);
 * `reason` says what was wrong with it. The field's value is never included.
 */
export class InvalidEventError extends PortalTokensError {
  readonly code: InvalidEventCode;
  /** The offending field, such as `auth[member_id]`, or `body` for the input as a whole. */
  readonly field: string;
  /**
   * A short machine-readable reason: `missing`, `type`, `format`, `too_large`, `too_many_keys`,
   * `too_deep`, `duplicate`, `content_type`, `unknown`, `syntax`, `lifecycle` (a lifecycle event given to
   * `parseRestEvent`).
   */
  readonly reason: string;

  constructor(
    field: string,
    reason: string,
    message: string,
    options: PortalTokensErrorOptions & { code?: InvalidEventCode } = {},
  ) {
    super(message, options);
    this.code = options.code ?? ErrorCode.InvalidEvent;
    this.field = field;
    this.reason = reason;
  }
}

/** An event or authorization result could not be proven genuine; nothing was stored. */
export class VerificationFailedError extends PortalTokensError {
  readonly code = ErrorCode.VerificationFailed;
  constructor(message: string, options: PortalTokensErrorOptions = {}) {
    super(message, options);
  }
}
