// Authenticates a parsed REST event against the store (the portal's stored application_token, compared in
// constant time) and obtains the portal's pooled client; every refusal is the answer to send.

import type { B24OAuth } from '@bitrix24/b24jssdk';
import type { EventHandlerContext } from '../context.js';
import { ErrorCode, PortalTokensError, StoreError } from '../errors.js';
import type { RestEvent } from '../events/types.js';
import { describeError, type Logger } from '../logger.js';
import { applicationTokenRefusal } from '../oauth/verify.js';
import { internalErrorResponse, jsonResponse, type PlainResponse } from '../plain.js';

/** Why an event was not let through, for the log (never sent to the caller). */
export type EventRefusal = 'unknown_portal' | 'portal_revoked' | 'portal_suspended' | 'no_stored_application_token' | 'application_token_mismatch';

/** The 403 every refusal gets: the answer does not say which check failed. */
export function forbiddenResponse(): PlainResponse {
  return jsonResponse(403, { error: ErrorCode.VerificationFailed });
}

/**
 * The answer when the store failed: generic, so the sender (anyone, before authentication) does not
 * learn that the store is down; 503 with `Retry-After` when it was unreachable, else 500.
 */
function storeFailureResponse(error: unknown): PlainResponse {
  return error instanceof StoreError && error.transient ? jsonResponse(503, { error: ErrorCode.Internal }, { 'retry-after': '5' }) : internalErrorResponse();
}

function refuse(logger: Logger, event: RestEvent, reason: EventRefusal): PlainResponse {
  logger.warn({ memberId: event.auth.memberId, event: event.event, reason }, 'REST event refused');
  return forbiddenResponse();
}

/**
 * Checks the event against the portal's stored record: the record must exist, be active and hold an
 * `application_token` equal (constant time) to the event's.
 * @returns `undefined` when the event is authentic, else the answer to send.
 */
export async function authenticate(context: EventHandlerContext, logger: Logger, event: RestEvent): Promise<PlainResponse | undefined> {
  const memberId = event.auth.memberId;
  let record;
  try {
    record = await context.store.get(memberId);
  } catch (error) {
    logger.error({ memberId, event: event.event, err: describeError(error) }, 'Token store failed while authenticating a REST event');
    return storeFailureResponse(error);
  }
  if (record === undefined) return refuse(logger, event, 'unknown_portal');
  if (record.state === 'revoked') return refuse(logger, event, 'portal_revoked');
  // Any state other than active (a custom store's) counts as suspended: no chain to act with.
  if (record.state !== 'active') return refuse(logger, event, 'portal_suspended');
  const refused = applicationTokenRefusal(event.auth.applicationToken, record);
  if (refused === undefined) return undefined;
  return refuse(logger, event, refused === 'no_stored_application_token' ? refused : 'application_token_mismatch');
}

const GONE: ReadonlySet<string> = new Set([ErrorCode.PortalNotInstalled, ErrorCode.PortalRevoked, ErrorCode.PortalSuspended]);

/**
 * The portal's pooled client, or the answer to send: a portal that went away since it was
 * authenticated gets the same 403, a failing store 500, anything else 500 without details.
 */
export async function portalClient(
  context: EventHandlerContext,
  logger: Logger,
  event: RestEvent,
): Promise<{ readonly client: B24OAuth } | { readonly response: PlainResponse }> {
  const memberId = event.auth.memberId;
  try {
    return { client: await context.clientFor(memberId) };
  } catch (error) {
    if (error instanceof PortalTokensError && GONE.has(error.code)) {
      logger.warn({ memberId, event: event.event, code: error.code }, 'REST event refused: the portal has no usable chain');
      return { response: forbiddenResponse() };
    }
    logger.error({ memberId, event: event.event, err: describeError(error) }, "Could not get the portal's client for a REST event");
    return { response: storeFailureResponse(error) };
  }
}
