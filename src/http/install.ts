// ONAPPINSTALL and ONAPPUPDATE: the server endpoint must be a trusted OAuth host, the chain must be
// confirmed by that host's app.info (unless verification is off), and only then is the record written.

import { ErrorCode, OAuthRejectedError, OAuthUnavailableError } from '../errors.js';
import type { InstallEvent, PortalAuth, UpdateEvent } from '../events/types.js';
import { describeError } from '../logger.js';
import { portalRecordFromAuth } from '../oauth/record.js';
import { applicationTokenRefusal, verifyChain } from '../oauth/verify.js';
import { jsonResponse, type PlainResponse } from '../plain.js';
import { serverEndpointOf, trustedBaseForServerEndpoint } from '../protocol/oauth-hosts.js';
import type { PortalRecord } from '../store/token-store.js';
import { LifecycleAnswerError } from './answers.js';
import { notifySafely, refusal, runHook, storeFailure, type LifecycleKit } from './lifecycle-kit.js';

/** Proves the event's chain genuine; returns it with the trusted host's endpoints. */
async function confirm(kit: LifecycleKit, event: InstallEvent | UpdateEvent): Promise<PortalAuth> {
  const auth = event.auth;
  const base = trustedBaseForServerEndpoint(auth.serverEndpoint, kit.trusted);
  if (base === undefined) throw refusal(kit, 'untrusted_server_endpoint', event);
  const confirmed: PortalAuth = { ...auth, serverEndpoint: serverEndpointOf(base) };
  if (!kit.verify) return confirmed;

  let verdict;
  try {
    verdict = await verifyChain(kit.context.oauth, base, auth.accessToken, { memberId: auth.memberId, domain: auth.domain });
  } catch (error) {
    if (error instanceof OAuthRejectedError) throw refusal(kit, 'token_rejected', event);
    kit.logger.error(
      { memberId: auth.memberId, event: event.event, err: describeError(error) },
      'Could not verify a lifecycle event with the trusted OAuth host; nothing stored',
    );
    throw error instanceof OAuthUnavailableError
      ? new LifecycleAnswerError(ErrorCode.OAuthUnavailable, 503, 'The trusted OAuth host could not be asked', {
          memberId: auth.memberId,
          headers: { 'retry-after': '5' },
          cause: error,
        })
      : new LifecycleAnswerError(ErrorCode.OAuthInvalidResponse, 502, 'The trusted OAuth host answered something unusable', {
          memberId: auth.memberId,
          cause: error,
        });
  }
  if (verdict.refusal !== undefined) throw refusal(kit, verdict.refusal, event);
  const clientEndpoint = verdict.info.clientEndpoint;
  // The authority's view of the portal's REST root wins over the payload's.
  return clientEndpoint !== undefined && clientEndpoint !== auth.clientEndpoint ? { ...confirmed, clientEndpoint } : confirmed;
}

/** Handles a parsed ONAPPINSTALL or ONAPPUPDATE. */
export async function handleInstallOrUpdate(kit: LifecycleKit, event: InstallEvent | UpdateEvent): Promise<PlainResponse> {
  const { context, logger } = kit;
  const confirmed = await confirm(kit, event);
  const memberId = confirmed.memberId;

  let existing: PortalRecord | undefined;
  try {
    existing = await context.store.get(memberId);
  } catch (error) {
    throw storeFailure(kit, error, event, 'get');
  }
  if (!kit.verify && existing !== undefined) {
    // Unverified mode: a known portal changes only for someone who knows its application_token.
    const refused = applicationTokenRefusal(event.auth.applicationToken, existing);
    if (refused !== undefined) throw refusal(kit, refused, event);
  }

  let stored: PortalRecord;
  try {
    stored = await context.store.upsert(portalRecordFromAuth(confirmed, existing, context.clock.now()));
  } catch (error) {
    throw storeFailure(kit, error, event, 'upsert');
  }
  notifySafely(kit, { type: event.type === 'install' ? 'installed' : 'updated', memberId: stored.memberId });
  logger.info(
    { memberId: stored.memberId, event: event.event, verified: kit.verify, reinstall: existing !== undefined, version: stored.version },
    event.type === 'install' ? 'Portal installed' : 'Portal updated',
  );
  const hook = kit.onInstalled;
  if (hook !== undefined) await runHook(kit, 'onInstalled', stored.memberId, () => hook(event, stored));
  return jsonResponse(200, { ok: true });
}
