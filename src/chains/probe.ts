// The one probe of whether a stored chain is alive. Asked before an uninstall deletes a portal,
// before a chain that is not an administrator's replaces a stored one, and before a reseed.

import type { ChainStatus, OAuthHostClient, PortalTokensContext } from '../context.js';
import { OAuthRejectedError } from '../errors.js';
import { describeError, type Logger } from '../logger.js';
import { oauthBaseFromServerEndpoint } from '../protocol/oauth-hosts.js';
import type { PortalRecord } from '../store/token-store.js';
import { isHttpUrl } from './record.js';

/**
 * What `app.info` says about a stored chain's access token: `alive` only when it names this app's
 * `client_id` and the record's portal; `dead` when it names another app or portal, or the host
 * `refused` when the host refuses the access token (gone, or superseded by a refresh: only a refresh
 * of the chain can tell which); `expired` when it merely expired; `unreachable` when the host could
 * not be asked.
 */
export async function probeAccess(oauth: OAuthHostClient, record: PortalRecord): Promise<ChainStatus | 'expired' | 'refused'> {
  if (record.state === 'revoked' || record.accessToken === '') return 'dead';
  try {
    const info = await oauth.appInfo(oauthBaseFromServerEndpoint(record.serverEndpoint), record.accessToken);
    return info.memberId === record.memberId && info.clientId === oauth.clientId ? 'alive' : 'dead';
  } catch (error) {
    if (!(error instanceof OAuthRejectedError)) return 'unreachable';
    return error.oauthError === 'expired_token' ? 'expired' : 'refused';
  }
}

/**
 * Whether a stored chain is alive. A context that can refresh (a pool, through its coordinator:
 * once for every worker) answers for every chain; any other is asked with `app.info` alone, where
 * an expired access token proves nothing either way (`unreachable`) and a refused one counts as dead.
 */
export async function chainStatus(
  context: Pick<PortalTokensContext, 'oauth' | 'confirmChain'>,
  logger: Logger,
  stored: PortalRecord,
): Promise<ChainStatus> {
  const { memberId, chain } = stored;
  try {
    if (context.confirmChain !== undefined) return await context.confirmChain(memberId, chain);
    const status = await probeAccess(context.oauth, stored);
    return status === 'expired' ? 'unreachable' : status === 'refused' ? 'dead' : status;
  } catch (error) {
    logger.warn({ memberId, chain, err: describeError(error) }, 'Could not ask the OAuth host about a stored chain');
    return 'unreachable';
  }
}

/** Whose chain is stored for a portal, as far as the OAuth host and the portal can tell. */
export type StoredAuthority = 'administrator' | 'not-administrator' | 'dead' | 'unreachable';

/**
 * Whether the portal's stored chain is alive and belongs to one of its administrators: probed with
 * `confirm` (which may refresh it), then the portal is asked with its current access token
 * (`user.admin`), at the REST root the OAuth host confirms for it (`app.info`), never at a root
 * taken from the store alone. Decides whether an administrator's chain may replace it: always, unless it is
 * itself a live administrator's chain.
 */
export async function storedAuthority(
  context: Pick<PortalTokensContext, 'store' | 'oauth'>,
  confirm: (memberId: string) => Promise<ChainStatus>,
  memberId: string,
): Promise<StoredAuthority> {
  const status = await confirm(memberId);
  if (status !== 'alive') return status;
  const current = await context.store.get(memberId);
  if (current === undefined || current.state !== 'active') return 'dead';
  try {
    const root = await confirmedRestRoot(context.oauth, current);
    if (root === undefined) return 'unreachable';
    return (await context.oauth.userAdmin(root, current.accessToken)) ? 'administrator' : 'not-administrator';
  } catch {
    return 'unreachable';
  }
}

/**
 * Where a stored chain's access token may be sent for `user.admin`: the REST root the OAuth host's
 * `app.info` names for it, else the stored one when its host is the domain the OAuth host names;
 * never the stored one on the store's word alone (`undefined`: the host did not confirm it).
 */
async function confirmedRestRoot(oauth: OAuthHostClient, record: PortalRecord): Promise<string | undefined> {
  const info = await oauth.appInfo(oauthBaseFromServerEndpoint(record.serverEndpoint), record.accessToken);
  if (info.memberId !== record.memberId || info.clientId !== oauth.clientId) return undefined;
  if (info.clientEndpoint !== undefined && isHttpUrl(info.clientEndpoint)) return info.clientEndpoint;
  const host = hostOf(record.clientEndpoint);
  return info.domain !== undefined && host !== undefined && host === info.domain.toLowerCase() ? record.clientEndpoint : undefined;
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).host.toLowerCase();
  } catch {
    return undefined;
  }
}
