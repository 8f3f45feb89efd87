// Seeding a TokenStore from the stand-in: the record a verified install (the portal's chain) or a
// verified app-page visit (a user's chain) would have written, without going through either.

import { PORTAL_CHAIN, userChain, type PortalRecord, type PortalRecordInput } from '../../store/token-store.js';
import type { TokenStore } from '../../store/token-store.js';
import type { FakeBitrix24 } from './stand-in.js';
import type { FakeChain } from './types.js';
import { assertUserId } from './util.js';

/** Options of {@link seedStore}. */
export interface SeedStoreOptions {
  /**
   * Write this user's chain (`chain: userChain(userId)`), issued for this user, instead of the
   * portal's chain.
   * @defaultValue the portal's chain, issued for its installer
   */
  userId?: number;
  /**
   * Store this chain instead of issuing a new one (it must belong to the portal, and to `userId`
   * when that is given).
   * @defaultValue a freshly issued chain
   */
  chain?: FakeChain;
  /**
   * Store the chain as expired: the record's `expires` lies before the chain was issued, and the
   * stand-in answers its access token with 401 `expired_token`, so the first use must refresh.
   * @defaultValue `false`
   */
  expired?: boolean;
  /**
   * Fields to override in the written record (such as `chainUpdatedAt` for a sweep test, or
   * `state: 'revoked'`).
   * @defaultValue none
   */
  record?: Partial<PortalRecordInput>;
}

/** What {@link seedStore} wrote. */
export interface SeededChain {
  /** The record as the store returned it (with its `version`). */
  readonly record: PortalRecord;
  /** The stand-in chain the record holds. */
  readonly chain: FakeChain;
}

/**
 * Writes a stand-in chain into a {@link TokenStore} as the current record of a portal's chain (or,
 * with `userId`, of that user's chain), exactly as a verified install or app-page visit would, so a
 * pool test can start from a stored portal.
 *
 * @example
 * ```ts
 * const portal = b24.addPortal({ users: [7] });
 * await seedStore(store, b24, portal.memberId);                               // the portal's chain
 * await seedStore(store, b24, portal.memberId, { userId: 7, expired: true }); // user 7's, expired
 * ```
 */
export async function seedStore(
  store: TokenStore,
  fake: FakeBitrix24,
  memberId: string,
  options: SeedStoreOptions = {},
): Promise<SeededChain> {
  const portal = fake.portal(memberId);
  if (portal === undefined) throw new TypeError('memberId: no portal with this member_id in the stand-in');
  if (options.userId !== undefined) assertUserId(options.userId, 'options.userId');
  const chain = options.chain ?? fake.issueChain(memberId, options.userId === undefined ? {} : { userId: options.userId });
  if (chain.memberId !== memberId) throw new TypeError('options.chain: the chain belongs to another portal');
  if (options.userId !== undefined && chain.userId !== options.userId) {
    throw new TypeError('options.chain: the chain belongs to another user');
  }
  let expires = chain.expires;
  if (options.expired === true) {
    expires = chain.expires - chain.expiresIn - 1;
    fake.expireAccessToken(chain.accessToken);
  }
  const now = Date.now();
  const record = await store.upsert({
    memberId,
    chain: options.userId === undefined ? PORTAL_CHAIN : userChain(options.userId),
    domain: portal.domain,
    clientEndpoint: portal.clientEndpoint,
    serverEndpoint: fake.serverEndpoint,
    accessToken: chain.accessToken,
    refreshToken: chain.refreshToken,
    expires,
    scope: portal.scope,
    status: portal.status,
    userId: chain.userId,
    applicationToken: portal.applicationToken,
    state: 'active',
    revokedReason: null,
    installedAt: now,
    updatedAt: now,
    chainUpdatedAt: now,
    revokedAt: null,
    ...options.record,
  });
  return { record, chain };
}
