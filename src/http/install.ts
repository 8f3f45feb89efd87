// ONAPPINSTALL and ONAPPUPDATE. The payload is a claim; the OAuth host and the store's history are the
// evidence (PROTOCOL.md section 5):
// - an event older than the stored one changes nothing;
// - the event's refresh token is proven by refreshing it at a trusted OAuth host (a forged or spent
//   one fails; a real one yields the authority's member_id, user_id and endpoints, even after the
//   event's access token expired), and the fresh pair is what is stored;
// - a live stored chain is replaced only by a portal administrator's chain (`user.admin`) or when
//   the OAuth host says the stored chain is dead;
// - REST roots come from the OAuth host's answer (or the stored record), never from the payload.

import { ErrorCode, OAuthRejectedError, OAuthUnavailableError, StoreError } from '../errors.js';
import type { InstallEvent, UpdateEvent } from '../events/types.js';
import { describeError } from '../logger.js';
import type { TokenResponse } from '../oauth/oauth-client.js';
import { portalRecordFromAuth } from '../oauth/record.js';
import { applicationTokenRefusal } from '../oauth/verify.js';
import { jsonResponse, type PlainResponse } from '../plain.js';
import { classifyOAuthError } from '../protocol/oauth-errors.js';
import { serverEndpointOf, trustedBaseForServerEndpoint } from '../protocol/oauth-hosts.js';
import type { PortalRecord, PortalRecordInput } from '../store/token-store.js';
import { LifecycleAnswerError } from './answers.js';
import { chainStatus, isStale, writeVerified } from './install-write.js';
import { notifySafely, refusal, runHook, storeFailure, type LifecycleKit } from './lifecycle-kit.js';
import { untrustedEndpointRefusal } from './untrusted-endpoint.js';

/** Handles a parsed ONAPPINSTALL or ONAPPUPDATE. */
export async function handleInstallOrUpdate(kit: LifecycleKit, event: InstallEvent | UpdateEvent): Promise<PlainResponse> {
  const base = trustedBaseForServerEndpoint(event.auth.serverEndpoint, kit.trusted);
  if (base === undefined) throw untrustedEndpointRefusal(kit, event);
  return kit.verify ? installVerified(kit, event, base) : installUnverified(kit, event, base);
}

async function installVerified(kit: LifecycleKit, event: InstallEvent | UpdateEvent, base: string): Promise<PlainResponse> {
  const { context, logger } = kit;
  const memberId = event.auth.memberId;
  let existing: PortalRecord | undefined;
  let storeDown: StoreError | undefined;
  try {
    existing = await context.store.get(memberId);
  } catch (error) {
    if (!(error instanceof StoreError && error.transient && kit.spool !== undefined)) throw storeFailure(kit, error, event, 'get');
    storeDown = error;
  }
  // Proven first, so that the answer to a forged event never tells whether a portal is installed.
  const tokens = await prove(kit, event, base);
  if (existing !== undefined && isStale(event.ts, existing.eventTs)) {
    logger.info({ memberId, event: event.event, ts: event.ts, storedTs: existing.eventTs }, 'Lifecycle event older than the stored chain; nothing changed');
    return jsonResponse(200, { ok: true });
  }
  // From here a fresh pair exists only in this process: nothing below may drop it silently.
  const info = await kit.context.oauth.appInfo(base, tokens.accessToken).catch((error: unknown) => {
    logger.warn({ memberId, err: describeError(error) }, "Could not read the portal's domain from the OAuth host's app.info");
    return undefined;
  });
  const clientEndpoint = trustedRestRoot(tokens, info?.clientEndpoint, existing);
  if (clientEndpoint === undefined) throw refusal(kit, 'untrusted_client_endpoint', event);
  const domain = info?.memberId === memberId && info.domain !== undefined ? info.domain.toLowerCase() : existing?.domain ?? new URL(clientEndpoint).host;
  const admin = await isAdministrator(kit, clientEndpoint, tokens.accessToken, memberId);
  if (existing !== undefined && existing.state === 'active' && !admin) {
    // Not an administrator's chain: it may only take the place of a chain that is dead.
    const status = await chainStatus(kit, memberId, existing);
    if (status !== 'dead') throw refusal(kit, status === 'alive' ? 'not_admin_live_chain' : 'stored_chain_unconfirmed', event);
  }
  const auth = {
    ...event.auth,
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken ?? event.auth.refreshToken,
    expires: tokens.expires,
    expiresIn: tokens.expiresIn,
    scope: tokens.scope ?? event.auth.scope,
    status: tokens.status ?? event.auth.status,
    userId: tokens.userId,
    clientEndpoint,
    domain,
    serverEndpoint: serverEndpointOf(base),
  };
  const record: PortalRecordInput = { ...portalRecordFromAuth(auth, existing, context.clock.now()), eventTs: event.ts };
  const replace = existing === undefined && storeDown !== undefined && !admin ? 'if-absent' : 'always';

  const stored = storeDown === undefined ? await writeVerified(kit, event, existing, record) : undefined;
  if (stored === undefined || stored === 'spool') {
    return spooled(kit, event, record, replace);
  }
  if (stored === 'stale') return jsonResponse(200, { ok: true });
  notifySafely(kit, { type: event.type === 'install' ? 'installed' : 'updated', memberId });
  logger.info(
    { memberId, event: event.event, userId: tokens.userId, admin, reinstall: existing !== undefined, version: stored.version },
    event.type === 'install' ? 'Portal installed' : 'Portal updated',
  );
  kit.replaySpool?.();
  const hook = kit.onInstalled;
  if (hook !== undefined) await runHook(kit, 'onInstalled', memberId, () => hook(event, stored));
  return jsonResponse(200, { ok: true });
}

/** Refreshes the event's refresh token at the trusted host: the proof, and the pair to store. */
async function prove(kit: LifecycleKit, event: InstallEvent | UpdateEvent, base: string): Promise<TokenResponse> {
  const memberId = event.auth.memberId;
  let tokens: TokenResponse;
  try {
    tokens = await kit.context.oauth.refresh(base, event.auth.refreshToken);
  } catch (error) {
    if (error instanceof OAuthRejectedError && classifyOAuthError(error.oauthError) === 'credentials') {
      kit.logger.error({ memberId, event: event.event, oauthError: error.oauthError }, 'The OAuth host refused this app\'s client credentials; check clientId and clientSecret');
      throw new LifecycleAnswerError(ErrorCode.OAuthCredentials, 500, 'The app\'s client credentials were refused', { memberId, cause: error });
    }
    if (error instanceof OAuthRejectedError) throw refusal(kit, 'token_rejected', event);
    kit.logger.error({ memberId, event: event.event, err: describeError(error) }, 'Could not prove a lifecycle event with the trusted OAuth host; nothing stored');
    throw error instanceof OAuthUnavailableError
      ? new LifecycleAnswerError(ErrorCode.OAuthUnavailable, 503, 'The trusted OAuth host could not be asked', {
          memberId,
          headers: { 'retry-after': '5' },
          cause: error,
        })
      : new LifecycleAnswerError(ErrorCode.OAuthInvalidResponse, 502, 'The trusted OAuth host answered something unusable', {
          memberId,
          cause: error,
        });
  }
  if (tokens.memberId !== memberId) throw refusal(kit, 'member_id_mismatch', event);
  return tokens;
}

/** The portal's REST root from a trusted source: the OAuth host's answers, else the stored record. */
function trustedRestRoot(tokens: TokenResponse, fromAppInfo: string | undefined, existing: PortalRecord | undefined): string | undefined {
  const answered = tokens.clientEndpoint ?? fromAppInfo;
  if (answered !== undefined) {
    try {
      const url = new URL(answered);
      if ((url.protocol === 'https:' || url.protocol === 'http:') && url.username === '' && url.password === '') {
        return url.href.endsWith('/') ? url.href : `${url.href}/`;
      }
    } catch {
      // fall through to the stored one
    }
  }
  return existing?.clientEndpoint;
}

/** Whether the chain's user administers the portal; anything but a clear `true` counts as no. */
async function isAdministrator(kit: LifecycleKit, clientEndpoint: string, accessToken: string, memberId: string): Promise<boolean> {
  try {
    return await kit.context.oauth.userAdmin(clientEndpoint, accessToken);
  } catch (error) {
    kit.logger.warn({ memberId, err: describeError(error) }, 'Could not ask the portal whether the installing user is an administrator');
    return false;
  }
}

/** The store could not take a proven chain: keep it in the spool, or answer 503 without one. */
async function spooled(
  kit: LifecycleKit,
  event: InstallEvent | UpdateEvent,
  record: PortalRecordInput,
  replace: 'always' | 'if-absent',
): Promise<PlainResponse> {
  const memberId = event.auth.memberId;
  const spool = kit.spool;
  if (spool === undefined) {
    throw new LifecycleAnswerError(ErrorCode.StoreFailure, 503, 'Token store unavailable', { memberId, headers: { 'retry-after': '5' } });
  }
  try {
    await spool.put({ memberId, ts: event.ts ?? Math.floor(kit.context.clock.now() / 1000), kind: event.type, record, replace });
  } catch (error) {
    kit.logger.error({ memberId, event: event.event, err: describeError(error) }, 'The store is down and the install spool refused the event');
    throw new LifecycleAnswerError(ErrorCode.StoreFailure, 503, 'Token store unavailable', { memberId, headers: { 'retry-after': '5' }, cause: error });
  }
  kit.logger.warn({ memberId, event: event.event }, 'Token store unavailable: the verified event was spooled and will be applied when it is back');
  return jsonResponse(200, { ok: true, spooled: true });
}

/** verify: false: a known portal changes only for someone who knows its application_token. */
async function installUnverified(kit: LifecycleKit, event: InstallEvent | UpdateEvent, base: string): Promise<PlainResponse> {
  const { context, logger } = kit;
  const memberId = event.auth.memberId;
  let existing: PortalRecord | undefined;
  try {
    existing = await context.store.get(memberId);
  } catch (error) {
    throw storeFailure(kit, error, event, 'get');
  }
  if (existing !== undefined) {
    const refused = applicationTokenRefusal(event.auth.applicationToken, existing);
    if (refused !== undefined) throw refusal(kit, refused, event);
    if (isStale(event.ts, existing.eventTs)) return jsonResponse(200, { ok: true });
  }
  const auth = { ...event.auth, serverEndpoint: serverEndpointOf(base) };
  let stored: PortalRecord;
  try {
    stored = await context.store.upsert({ ...portalRecordFromAuth(auth, existing, context.clock.now()), eventTs: event.ts });
  } catch (error) {
    throw storeFailure(kit, error, event, 'upsert');
  }
  notifySafely(kit, { type: event.type === 'install' ? 'installed' : 'updated', memberId });
  logger.info({ memberId, event: event.event, verified: false, version: stored.version }, event.type === 'install' ? 'Portal installed' : 'Portal updated');
  const hook = kit.onInstalled;
  if (hook !== undefined) await runHook(kit, 'onInstalled', memberId, () => hook(event, stored));
  return jsonResponse(200, { ok: true });
}
