// A user's own chain, kept beside the portal's: taken from the app page (the chain Bitrix24 minted
// for the user who opened the app), proven at a trusted OAuth host, stored under `user:<id>`.
// Never touches the portal's chain.

import { VerificationFailedError } from '../errors.js';
import type { AppPageRequest } from '../events/types.js';
import { trustedBaseForServerEndpoint } from '../protocol/oauth-hosts.js';
import type { Logger } from '../logger.js';
import type { OAuthClient } from '../oauth/oauth-client.js';
import type { ChainStatus } from '../context.js';
import type { TokenResponse } from '../oauth/oauth-client.js';
import { userChain, type ChainId, type PortalRecord, type PortalRecordInput, type TokenStore } from '../store/token-store.js';
import { storedAuthority } from './probe.js';
import { isHttpUrl, recordFromAnswer } from './record.js';

/** What remembering a user needs. */
export interface RememberUserContext {
  readonly store: TokenStore;
  readonly oauth: OAuthClient;
  readonly logger: Logger;
  readonly now: () => number;
  /** Normalised trusted OAuth bases; the first is used when the page names none of them. */
  readonly trustedHosts: readonly string[];
}

/**
 * Proves the page's chain by refreshing its refresh token at a trusted OAuth host (a forged or
 * spent one fails; a real one yields the authority's `member_id` and `user_id`), then stores the
 * fresh pair as that user's chain. The page's own access token dies with the refresh; the app's
 * front end gets a new one from the portal as usual.
 * @throws VerificationFailedError when the OAuth host refuses the chain or names another portal or no user.
 */
export async function rememberUser(context: RememberUserContext, page: AppPageRequest): Promise<PortalRecord> {
  const proven = await provePage(context, page);
  return storeUserChain(context, page, proven);
}

/** A page's chain proven at the OAuth host: the fresh pair and where it lives. */
interface ProvenPage {
  readonly tokens: TokenResponse;
  readonly base: string;
  readonly clientEndpoint: string;
  readonly userId: number;
  readonly portal: PortalRecord | undefined;
}

/** What reseeding needs beside what remembering a user needs: the probe of the portal's chain. */
export type ReseedContext = RememberUserContext & { readonly confirm: (memberId: string) => Promise<ChainStatus> };

/** What `PortalClientPool.visit` did with an app-page visit. */
export interface VisitOutcome {
  /** The chain the page's pair was stored as: `'portal'` when it reseeded the portal, else the user's. */
  readonly chain: ChainId;
  /** The record as stored. */
  readonly record: PortalRecord;
  /** Whether the visit brought the portal's dead chain back. */
  readonly reseeded: boolean;
  /** Why the portal's chain was not reseeded, when it was not. */
  readonly why: 'not_admin' | 'portal_chain_alive' | 'portal_chain_unconfirmed' | undefined;
}

/**
 * The decision about an app page: a proven page of a portal administrator becomes the portal's
 * chain when the stored one is dead; anything else is kept as its user's chain. A page's pair is
 * one chain, so it is stored once, as one or the other.
 */
async function decidePage(context: ReseedContext, page: AppPageRequest): Promise<VisitOutcome> {
  const proven = await provePage(context, page);
  const memberId = page.auth.memberId;
  const admin = await context.oauth.userAdmin(proven.clientEndpoint, proven.tokens.accessToken).catch(() => false);
  const stored = proven.portal;
  // Only an administrator's page may reseed: nobody else's visit spends a probe of the stored chain.
  // An administrator's chain replaces a dead one, and a live one that is not an administrator's.
  const status = !admin ? 'unknown' : stored === undefined || stored.state === 'revoked' ? 'dead' : await storedAuthority(context, context.confirm, memberId);
  if (!admin || (status !== 'dead' && status !== 'not-administrator')) {
    const record = await storeUserChain(context, page, proven);
    const why = !admin ? 'not_admin' : status === 'administrator' ? 'portal_chain_alive' : 'portal_chain_unconfirmed';
    return { chain: record.chain, record, reseeded: false, why };
  }
  const record = await context.store.upsert({
    ...recordFrom(page, proven, 'portal', stored, context.now()),
    applicationToken: page.auth.applicationToken ?? stored?.applicationToken ?? null,
    eventTs: stored?.eventTs ?? null,
  });
  context.logger.info({ memberId, version: record.version }, "reseeded the portal's chain from an administrator's app page");
  return { chain: 'portal', record, reseeded: true, why: undefined };
}

/**
 * Brings back a portal whose chain is revoked or dead, from an administrator's app-page visit:
 * proves the page's chain, checks that its user administers the portal (`user.admin`), and makes
 * it the portal's chain, never over a live administrator's chain (a live chain of anyone else is
 * replaced). A page that does not qualify is kept as its
 * user's chain, and the typed refusal says why.
 * @throws VerificationFailedError when the chain is not proven, the user is not an administrator,
 *   or the stored chain is a live administrator's.
 */
export async function reseed(context: ReseedContext, page: AppPageRequest): Promise<PortalRecord> {
  const outcome = await decidePage(context, page);
  if (outcome.reseeded) return outcome.record;
  const memberId = page.auth.memberId;
  const why = outcome.why === 'not_admin' ? 'the user is not a portal administrator' : outcome.why === 'portal_chain_alive' ? "the portal's stored chain still works (a live administrator's)" : "the portal's stored chain could not be confirmed";
  context.logger.warn({ memberId, why: outcome.why }, "reseed refused; kept the page as its user's chain");
  throw new VerificationFailedError(`Reseed refused: ${why}`, { memberId });
}

/**
 * An app-page visit, whole: remembers the visitor's chain and, when the visitor administers the
 * portal and the portal's chain is dead (revoked, lapsed, lost, or never stored), makes the page's
 * chain the portal's. Never throws for a visitor who does not qualify; the outcome says what was
 * stored.
 * @throws VerificationFailedError when the page's chain is not proven at the OAuth host.
 */
export async function visit(context: ReseedContext, page: AppPageRequest): Promise<VisitOutcome> {
  const outcome = await decidePage(context, page);
  context.logger.info({ memberId: page.auth.memberId, chain: outcome.chain, reseeded: outcome.reseeded }, 'app page visit remembered');
  return outcome;
}

async function provePage(context: RememberUserContext, page: AppPageRequest): Promise<ProvenPage> {
  if (page === null || typeof page !== 'object' || page.type !== 'app-page') {
    throw new TypeError('page must be a parsed app-page request (parseAppPageRequest)');
  }
  const { auth } = page;
  // The page's SERVER_ENDPOINT only selects an entry of the allow-list; it is never trusted itself.
  const base = trustedBaseForServerEndpoint(auth.serverEndpoint, context.trustedHosts) ?? context.trustedHosts[0];
  if (base === undefined) throw new TypeError('no trusted OAuth host is configured');
  let tokens;
  try {
    tokens = await context.oauth.refresh(base, auth.refreshToken);
  } catch (error) {
    throw new VerificationFailedError("The OAuth host refused the app page's chain", { cause: error, memberId: auth.memberId });
  }
  if (tokens.memberId !== auth.memberId) {
    throw new VerificationFailedError("The OAuth host named another portal for the app page's chain", { memberId: auth.memberId });
  }
  if (tokens.userId === null || tokens.userId < 1) {
    throw new VerificationFailedError("The OAuth host named no user for the app page's chain", { memberId: auth.memberId });
  }
  const portal = await context.store.get(auth.memberId);
  // The REST root comes from the OAuth host's answer or the portal's verified record, never the page.
  const clientEndpoint =
    tokens.clientEndpoint !== undefined && isHttpUrl(tokens.clientEndpoint) ? tokens.clientEndpoint : portal?.clientEndpoint;
  if (clientEndpoint === undefined) {
    throw new VerificationFailedError('No trusted REST root is known for the portal; install the app first', { memberId: auth.memberId });
  }
  return { tokens, base, clientEndpoint, userId: tokens.userId, portal };
}

function recordFrom(page: AppPageRequest, proven: ProvenPage, chain: ChainId, existing: PortalRecord | undefined, now: number): PortalRecordInput {
  const { auth } = page;
  return recordFromAnswer({
    memberId: auth.memberId,
    chain,
    tokens: proven.tokens,
    oauthBase: proven.base,
    clientEndpoint: proven.clientEndpoint,
    domain: proven.portal?.domain ?? new URL(proven.clientEndpoint).host,
    fallback: { refreshToken: auth.refreshToken, scope: auth.scope, status: auth.status, applicationToken: proven.portal?.applicationToken },
    existing,
    now,
  });
}

async function storeUserChain(context: RememberUserContext, page: AppPageRequest, proven: ProvenPage): Promise<PortalRecord> {
  const chain = userChain(proven.userId);
  const record = await context.store.upsert({ ...recordFrom(page, proven, chain, undefined, context.now()), installedAt: context.now() });
  context.logger.info({ memberId: page.auth.memberId, chain, version: record.version }, "stored a user's chain from the app page");
  return record;
}
