// Is a portal's stored chain still alive at the OAuth host? The lifecycle handler asks before it
// lets an uninstall delete a portal or a non-administrator's install replace a chain.

import type { ChainStatus } from '../context.js';
import type { RefreshCoordinator } from '../coordinator/coordinator.js';
import { PortalNotInstalledError, PortalRevokedError, PortalSuspendedError } from '../errors.js';
import type { OAuthClient } from '../oauth/oauth-client.js';
import { oauthBaseFromServerEndpoint } from '../protocol/oauth-hosts.js';
import type { PortalMove } from '../sdk/move.js';
import type { ChainId, PortalRecord } from '../store/token-store.js';
import { probeAccess } from '../chains/probe.js';

/**
 * The pool's answer to "is this chain alive": the chain core's probe (`app.info`, which must name
 * this app and the portal); when the host refuses the access token (expired, superseded, or the app
 * gone), the coordinator refreshes the chain (once for every worker): a chain that still refreshes
 * belongs to an installed app.
 */
export async function confirmChain(coordinator: RefreshCoordinator, oauth: OAuthClient, memberId: string, chain: ChainId = 'portal'): Promise<ChainStatus> {
  const record = await coordinator.read(memberId, chain);
  if (record === undefined) return 'dead';
  const probed = await probeAccess(oauth, record);
  if (probed !== 'expired' && probed !== 'refused') return probed;
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
