// The authorization callback as a framework-neutral handler: the redirect's query in, the flow's
// outcome as an HTTP answer out (a 302 to `returnTo`, or a JSON status; never a token).

import {
  InvalidEventError,
  InvalidStateError,
  OAuthInvalidResponseError,
  OAuthRejectedError,
  OAuthUnavailableError,
  StoreError,
  VerificationFailedError,
} from '../errors.js';
import { describeError, type Logger } from '../logger.js';
import {
  internalErrorResponse,
  jsonResponse,
  methodNotAllowedResponse,
  type PlainHandler,
  type PlainRequest,
  type PlainResponse,
  type QueryInput,
} from '../plain.js';
import type { ChainId, PortalRecord } from '../store/token-store.js';


/**
 * What a successful callback produced.
 * @inline
 */
export interface AuthorizationResult {
  /** The portal authorized. */
  readonly memberId: string;
  /**
   * Which chain was stored: `'portal'` when a portal administrator authorized, else the user's own
   * chain (`'user:<id>'`, for `clientFor(memberId, { userId })`); a non-administrator never replaces
   * the portal's chain.
   */
  readonly chain: ChainId;
  /** The portal's record as stored now. */
  readonly record: PortalRecord;
  /** `returnTo` (`AuthorizeUrlOptions`) from the state, if any. */
  readonly returnTo: string | undefined;
  /** `data` (`AuthorizeUrlOptions`) from the state, if any. */
  readonly data: string | undefined;
}

/** The largest request the callback takes: it has a query and no body. */
const CALLBACK_MAX_BODY_BYTES = 4096;

/**
 * Wraps the flow's `handleCallback` as a GET handler that maps each failure to its answer:
 * 400 for a bad state, a missing field or a refused code; 403 when not proven genuine; 502/503 when
 * the OAuth host failed; 500 when the store did.
 */
export function createCallbackHandler(
  handleCallback: (query: QueryInput) => Promise<AuthorizationResult>,
  onAuthorized: ((result: AuthorizationResult) => void | Promise<void>) | undefined,
  logger: Logger,
): PlainHandler {
  const answerFailure = (error: unknown): PlainResponse => {
    if (error instanceof InvalidStateError) {
      logger.warn({ reason: error.reason }, 'Authorization callback with an invalid state');
      return jsonResponse(400, { error: error.code, reason: error.reason });
    }
    if (error instanceof InvalidEventError) return jsonResponse(400, { error: error.code, field: error.field });
    if (error instanceof OAuthRejectedError) {
      logger.warn({ memberId: error.memberId, oauthError: error.oauthError }, 'OAuth host refused the authorization code');
      return jsonResponse(400, { error: error.code, oauthError: error.oauthError });
    }
    if (error instanceof VerificationFailedError) return jsonResponse(403, { error: error.code });
    logger.error({ err: describeError(error) }, 'Authorization callback failed');
    if (error instanceof OAuthUnavailableError) return jsonResponse(503, { error: error.code }, { 'retry-after': '5' });
    if (error instanceof OAuthInvalidResponseError) return jsonResponse(502, { error: error.code });
    if (error instanceof StoreError) return jsonResponse(500, { error: error.code });
    return internalErrorResponse();
  };

  const handler = async (request: PlainRequest): Promise<PlainResponse> => {
    if (typeof request.method !== 'string' || request.method.toUpperCase() !== 'GET') {
      return methodNotAllowedResponse('GET');
    }
    let result: AuthorizationResult;
    try {
      result = await handleCallback(request.query ?? '');
    } catch (error) {
      return answerFailure(error);
    }
    const hook = onAuthorized;
    if (hook !== undefined) {
      try {
        await hook(result);
      } catch (error) {
        logger.error({ memberId: result.memberId, hook: 'onAuthorized', err: describeError(error) }, 'Authorization hook failed');
      }
    }
    if (result.returnTo !== undefined) {
      return { status: 302, headers: { location: result.returnTo, 'cache-control': 'no-store' }, body: undefined };
    }
    return jsonResponse(200, { ok: true, memberId: result.memberId });
  };
  return Object.assign(handler, { maxBodyBytes: CALLBACK_MAX_BODY_BYTES });
}
