// The lifecycle handler's refusals as errors: each carries the status and the JSON body of its answer,
// so the steps of the handler throw and the dispatcher answers, in one place.

import { ErrorCode, PortalTokensError, type PortalTokensErrorOptions } from '../errors.js';
import { jsonResponse, type PlainResponse } from '../plain.js';

/**
 * The `error` values a lifecycle answer can carry besides the parser's codes.
 * @inline
 */
export type LifecycleAnswerCode =
  | typeof ErrorCode.MethodNotAllowed
  | typeof ErrorCode.PayloadTooLarge
  | typeof ErrorCode.UnsupportedMediaType
  | typeof ErrorCode.VerificationFailed
  | typeof ErrorCode.OAuthUnavailable
  | typeof ErrorCode.OAuthInvalidResponse
  | typeof ErrorCode.OAuthCredentials
  | typeof ErrorCode.StoreFailure
  | typeof ErrorCode.Internal;

/**
 * Options of {@link LifecycleAnswerError}.
 * @inline
 */
export interface LifecycleAnswerErrorOptions extends PortalTokensErrorOptions {
  /** Extra response headers (`allow`, `accept`, `retry-after`). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/**
 * A lifecycle event the handler did not accept, as the answer it gets: `status` and `code` (the
 * body's `error`). The handler turns it into its response; its message is for logs and never
 * carries a token.
 *
 * The static members name every `error` value an answer can carry besides the parser's codes, so
 * clients and tests can compare against constants: `body.error === LifecycleAnswerError.VerificationFailed`.
 */
export class LifecycleAnswerError extends PortalTokensError {
  /** 405: only POST is served. */
  static readonly MethodNotAllowed = ErrorCode.MethodNotAllowed;
  /** 413: the body exceeds the limit. */
  static readonly PayloadTooLarge = ErrorCode.PayloadTooLarge;
  /** 415: the body is neither form-urlencoded nor JSON. */
  static readonly UnsupportedMediaType = ErrorCode.UnsupportedMediaType;
  /** 403: the event could not be proven genuine; nothing changed. */
  static readonly VerificationFailed = ErrorCode.VerificationFailed;
  /** 503: the trusted OAuth host could not be asked; nothing changed. */
  static readonly OAuthUnavailable = ErrorCode.OAuthUnavailable;
  /** 502: the trusted OAuth host answered something unusable; nothing changed. */
  static readonly OAuthInvalidResponse = ErrorCode.OAuthInvalidResponse;
  /** 500: the store failed; nothing (or, for a failed delete, not everything) changed. */
  static readonly StoreFailure = ErrorCode.StoreFailure;
  /** 500: an unexpected failure inside the handler. */
  static readonly Internal = ErrorCode.Internal;

  /** The answer's `error` value. */
  readonly code: LifecycleAnswerCode;
  /** The HTTP status of the answer. */
  readonly status: number;
  /** Extra response headers of the answer. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: LifecycleAnswerCode, status: number, message: string, options: LifecycleAnswerErrorOptions = {}) {
    super(message, options);
    this.code = code;
    this.status = status;
    this.headers = options.headers ?? {};
  }

  /** The answer: `status`, `{ error: code }` and the extra headers. */
  toResponse(): PlainResponse {
    return jsonResponse(this.status, { error: this.code }, { ...this.headers });
  }
}
