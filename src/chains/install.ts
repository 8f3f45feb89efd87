// ONAPPINSTALL and ONAPPUPDATE, decided. The payload is a claim; the OAuth host and the store's
// history are the evidence (PROTOCOL.md section 5):
// - the event's refresh token is proven by refreshing it at a trusted OAuth host (a forged or spent
//   one fails; a real one yields the authority's member_id, user_id and endpoints, even after the
//   event's access token expired), and the fresh pair is what is stored;
// - an event older than the stored one changes nothing, where "older" is judged by a `ts` no later
//   than the OAuth host's clock (src/chains/order.ts);
// - a live stored chain is replaced only by a portal administrator's chain (`user.admin`) or when
//   the OAuth host says the stored chain is dead;
// - REST roots come from the OAuth host's answer (or the stored record), never from the payload.

import { OAuthRejectedError, OAuthUnavailableError, StoreError } from '../errors.js';
import type { InstallEvent, UpdateEvent } from '../events/types.js';
import { describeError } from '../logger.js';
import type { TokenResponse } from '../oauth/oauth-client.js';
import { applicationTokenRefusal } from '../oauth/verify.js';
import { classifyOAuthError } from '../protocol/oauth-errors.js';
import { serverEndpointOf, trustedBaseForServerEndpoint } from '../protocol/oauth-hosts.js';
import type { PortalRecord, PortalRecordInput } from '../store/token-store.js';
import { notifySafely, runHook, type LifecycleKit } from './kit.js';
import { chainStatus, storedAuthority } from './probe.js';
import { hostSecondsOf, isStale, orderTs } from './order.js';
import { portalRecordFromAuth, recordFromAnswer, trustedRestRoot } from './record.js';
import { writeChain } from './write.js';

/** What an install or update did: stored (with the record), ignored as older, or spooled. */
export type InstallOutcome =
  | { readonly kind: 'stored'; readonly record: PortalRecord }
  | { readonly kind: 'stale' }
  | { readonly kind: 'spooled' };

/**
 * Decides a parsed ONAPPINSTALL or ONAPPUPDATE and writes what it decided.
 * @throws the kit's refusal or failure (`kit.answers`) when nothing may change or could be stored.
 */
export async function installOrUpdate(kit: LifecycleKit, event: InstallEvent | UpdateEvent): Promise<InstallOutcome> {
  const base = trustedBaseForServerEndpoint(event.auth.serverEndpoint, kit.trusted);
  if (base === undefined) throw kit.answers.refuse('untrusted_server_endpoint', event);
  return kit.verify ? installVerified(kit, event, base) : installUnverified(kit, event, base);
}

async function installVerified(kit: LifecycleKit, event: InstallEvent | UpdateEvent, base: string): Promise<InstallOutcome> {
  const { context, logger } = kit;
  const memberId = event.auth.memberId;
  let existing: PortalRecord | undefined;
  let storeDown: StoreError | undefined;
  try {
    existing = await context.store.get(memberId);
  } catch (error) {
    if (!(error instanceof StoreError && error.transient && kit.spool !== undefined)) throw kit.answers.storeFailure(error, event, 'get');
    storeDown = error;
  }
  // Proven first, so that the answer to a forged event never tells whether a portal is installed.
  const tokens = await prove(kit, event, base);
  // The payload's ts is a claim: never ordered by beyond the OAuth host's clock.
  const ts = orderTs(event.ts, hostSecondsOf(tokens));
  if (ts !== event.ts) logger.warn({ memberId, event: event.event, ts: event.ts, orderedBy: ts }, "Lifecycle event's ts is ahead of the OAuth host's clock; ordered by the host's time");
  // From here a fresh pair exists only in this process: nothing below may drop it silently.
  const info = await context.oauth.appInfo(base, tokens.accessToken).catch((error: unknown) => {
    logger.warn({ memberId, err: describeError(error) }, "Could not read the portal's domain from the OAuth host's app.info");
    return undefined;
  });
  const clientEndpoint = trustedRestRoot(tokens, info?.clientEndpoint, existing);
  if (clientEndpoint === undefined) throw kit.answers.refuse('untrusted_client_endpoint', event);
  const domain = info?.memberId === memberId && info.domain !== undefined ? info.domain.toLowerCase() : existing?.domain ?? new URL(clientEndpoint).host;
  const admin = await isAdministrator(kit, clientEndpoint, tokens.accessToken, memberId);
  if (existing !== undefined && isStale(ts, existing.eventTs) && !(admin && (await replaceableByAdministrator(kit, existing)))) {
    logger.info({ memberId, event: event.event, ts, storedTs: existing.eventTs }, 'Lifecycle event older than the stored chain; nothing changed');
    return { kind: 'stale' };
  }
  if (existing !== undefined && existing.state === 'active' && !admin) {
    // Not an administrator's chain: it may only take the place of a chain that is dead.
    const status = await chainStatus(context, logger, existing);
    if (status !== 'dead') throw kit.answers.refuse(status === 'alive' ? 'not_admin_live_chain' : 'stored_chain_unconfirmed', event);
  }
  const { chain: _chain, ...record } = recordFromAnswer({
    memberId,
    chain: 'portal',
    tokens,
    oauthBase: base,
    clientEndpoint,
    domain,
    fallback: { refreshToken: event.auth.refreshToken, scope: event.auth.scope, status: event.auth.status, applicationToken: event.auth.applicationToken },
    existing,
    now: context.clock.now(),
    eventTs: ts,
  });
  const replace = existing === undefined && storeDown !== undefined && !admin ? 'if-absent' : 'always';

  const stored = storeDown === undefined ? await writeProven(kit, event, ts, existing, record) : 'spool';
  if (stored === 'spool') return spool(kit, event, record, replace, admin);
  if (stored === 'stale') return { kind: 'stale' };
  notifySafely(kit, { type: event.type === 'install' ? 'installed' : 'updated', memberId });
  logger.info(
    { memberId, event: event.event, userId: tokens.userId, admin, reinstall: existing !== undefined, version: stored.version },
    event.type === 'install' ? 'Portal installed' : 'Portal updated',
  );
  void kit.replaySpool?.();
  const hook = kit.onInstalled;
  if (hook !== undefined) await runHook(kit, 'onInstalled', memberId, () => hook(event, stored));
  return { kind: 'stored', record: stored };
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
      throw kit.answers.oauthFailure('credentials', event, error);
    }
    if (error instanceof OAuthRejectedError) throw kit.answers.refuse('token_rejected', event);
    kit.logger.error({ memberId, event: event.event, err: describeError(error) }, 'Could not prove a lifecycle event with the trusted OAuth host; nothing stored');
    throw kit.answers.oauthFailure(error instanceof OAuthUnavailableError ? 'unavailable' : 'invalid', event, error);
  }
  if (tokens.memberId !== memberId) throw kit.answers.refuse('member_id_mismatch', event);
  return tokens;
}

/**
 * Whether an administrator's proven chain may replace `existing` although its event looks older: a
 * chain that is not a live administrator's is always replaced (a claimed `ts` decides nothing
 * against an administrator); a live administrator's chain keeps the order of events.
 */
async function replaceableByAdministrator(kit: LifecycleKit, existing: PortalRecord): Promise<boolean> {
  if (existing.state !== 'active') return true;
  const authority = await storedAuthority(kit.context, () => chainStatus(kit.context, kit.logger, existing), existing.memberId);
  if (authority === 'not-administrator' || authority === 'dead') {
    kit.logger.warn({ memberId: existing.memberId, stored: authority }, "An administrator's chain replaces a stored chain that is not a live administrator's, whatever the timestamps");
    return true;
  }
  return false;
}

/** Whether the chain's user administers the portal; anything but a clear `true` counts as no. */
export async function isAdministrator(kit: Pick<LifecycleKit, 'context' | 'logger'>, clientEndpoint: string, accessToken: string, memberId: string): Promise<boolean> {
  try {
    return await kit.context.oauth.userAdmin(clientEndpoint, accessToken);
  } catch (error) {
    kit.logger.warn({ memberId, err: describeError(error) }, 'Could not ask the portal whether a chain\'s user is an administrator');
    return false;
  }
}

/**
 * Writes a proven chain: an upsert for a new portal, else a conditional write on the version read,
 * re-checked against the store's history on every conflict. `'stale'` when a newer event got
 * there first; `'spool'` when the store is unreachable and a spool is configured.
 */
async function writeProven(
  kit: LifecycleKit,
  event: InstallEvent | UpdateEvent,
  ts: number | null,
  existing: PortalRecord | undefined,
  record: PortalRecordInput,
): Promise<PortalRecord | 'stale' | 'spool'> {
  const { memberId, chain: _chain, ...patch } = record;
  const outcome = await writeChain<'stale' | 'spool'>({
    store: kit.context.store,
    key: { memberId, chain: 'portal' },
    base: existing,
    create: record,
    patch: () => ({ ...patch, eventTs: record.eventTs ?? null }),
    onConflict: (current) => (current !== undefined && isStale(ts, current.eventTs) ? { stop: 'stale' } : { retry: current }),
    onStoreError: (error) => {
      if (error instanceof StoreError && error.transient && kit.spool !== undefined) return Promise.resolve({ stop: 'spool' as const });
      throw kit.answers.storeFailure(error, event, existing === undefined ? 'upsert' : 'update');
    },
  });
  if ('written' in outcome) return outcome.written;
  if ('stopped' in outcome) return outcome.stopped;
  throw kit.answers.storeFailure(new StoreError('The record kept changing', { memberId }), event, 'update');
}

/** The store could not take a proven chain: keep it in the spool, or fail without one. */
async function spool(
  kit: LifecycleKit,
  event: InstallEvent | UpdateEvent,
  record: PortalRecordInput,
  replace: 'always' | 'if-absent',
  admin: boolean,
): Promise<InstallOutcome> {
  const memberId = event.auth.memberId;
  const unavailable = new StoreError('Token store unavailable', { memberId, transient: true });
  if (kit.spool === undefined) throw kit.answers.storeFailure(unavailable, event, 'write');
  try {
    await kit.spool.put({ memberId, ts: record.eventTs ?? Math.floor(kit.context.clock.now() / 1000), kind: event.type, record, replace, admin });
  } catch (error) {
    kit.logger.error({ memberId, event: event.event, err: describeError(error) }, 'The store is down and the install spool refused the event');
    throw kit.answers.storeFailure(new StoreError('Token store unavailable', { memberId, transient: true, cause: error }), event, 'spool');
  }
  kit.logger.warn({ memberId, event: event.event }, 'Token store unavailable: the verified event was spooled and will be applied when it is back');
  return { kind: 'spooled' };
}

/** verify: false: a known portal changes only for someone who knows its application_token. */
async function installUnverified(kit: LifecycleKit, event: InstallEvent | UpdateEvent, base: string): Promise<InstallOutcome> {
  const { context, logger } = kit;
  const memberId = event.auth.memberId;
  let existing: PortalRecord | undefined;
  try {
    existing = await context.store.get(memberId);
  } catch (error) {
    throw kit.answers.storeFailure(error, event, 'get');
  }
  if (existing !== undefined) {
    const refused = applicationTokenRefusal(event.auth.applicationToken, existing);
    if (refused !== undefined) throw kit.answers.refuse(refused, event);
    if (isStale(event.ts, existing.eventTs)) return { kind: 'stale' };
  }
  const auth = { ...event.auth, serverEndpoint: serverEndpointOf(base) };
  let stored: PortalRecord;
  try {
    stored = await context.store.upsert({ ...portalRecordFromAuth(auth, existing, context.clock.now()), eventTs: event.ts });
  } catch (error) {
    throw kit.answers.storeFailure(error, event, 'upsert');
  }
  notifySafely(kit, { type: event.type === 'install' ? 'installed' : 'updated', memberId });
  logger.info({ memberId, event: event.event, verified: false, version: stored.version }, event.type === 'install' ? 'Portal installed' : 'Portal updated');
  const hook = kit.onInstalled;
  if (hook !== undefined) await runHook(kit, 'onInstalled', memberId, () => hook(event, stored));
  return { kind: 'stored', record: stored };
}
