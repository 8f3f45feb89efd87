// Is a portal's stored chain still alive at the OAuth host? The lifecycle handler asks before it
// lets an uninstall delete a portal or a non-administrator's install replace a chain.

import type { ChainStatus } from '../context.js';
import type { RefreshCoordinator } from '../coordinator/coordinator.js';
import { OAuthRejectedError, PortalNotInstalledError, PortalRevokedError, PortalSuspendedError } from '../errors.js';
import type { OAuthClient } from '../oauth/oauth-client.js';
import { oauthBaseFromServerEndpoint } from '../protocol/oauth-hosts.js';
import type { PortalMove } from '../sdk/move.js';
import type { PortalRecord } from '../store/token-store.js';

/**
 * Asks `app.info` with the stored access token; when the host refuses that token (expired,
 * superseded, or the app gone), lets the coordinator refresh the chain (once for every worker):
 * a chain that still refreshes belongs to an installed app.
 */
export async function confirmChain(coordinator: RefreshCoordinator, oauth: OAuthClient, memberId: string): Promise<ChainStatus> {
  const record = await coordinator.read(memberId, 'portal');
  if (record === undefined || record.state === 'revoked') return 'dead';
  try {
    const info = await oauth.appInfo(oauthBaseFromServerEndpoint(record.serverEndpoint), record.accessToken);
    return info.memberId === memberId && info.clientId === oauth.clientId ? 'alive' : 'dead';
  } catch (error) {
    if (!(error instanceof OAuthRejectedError)) return 'unreachable';
  }
  let held = record;
  const view = {
    get record(): PortalRecord {
      return held;
    },
    windowSec: 0,
    adopt(next: PortalRecord): void {
      held = next;
    },
  };
  try {
    await coordinator.ensureFresh(view, { reason: 'confirm', rejectedToken: record.accessToken });
    return 'alive';
  } catch (error) {
    if (error instanceof PortalRevokedError || error instanceof PortalNotInstalledError) return 'dead';
    // Unpaid is still installed.
    if (error instanceof PortalSuspendedError) return 'alive';
    return 'unreachable';
  }
}

/**
 * Whether the OAuth host, asked with the chain's current token, names the REST root (or, when it
 * names none, the domain) a renamed portal's 3xx points at. Anything else is refused.
 */
export async function confirmMove(oauth: OAuthClient, record: PortalRecord, move: PortalMove): Promise<boolean> {
  try {
    const info = await oauth.appInfo(oauthBaseFromServerEndpoint(record.serverEndpoint), record.accessToken);
    if (info.memberId !== record.memberId) return false;
    if (info.clientEndpoint !== undefined) return info.clientEndpoint.toLowerCase() === move.root.toLowerCase();
    return info.domain !== undefined && info.domain.toLowerCase() === move.host.toLowerCase();
  } catch {
    return false;
  }
}
