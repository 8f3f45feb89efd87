// ONAPPUNINSTALL, decided. The event carries no tokens, and every app-page user of a newer portal may
// hold the application_token, so a matching token only gets the uninstall looked at: it is applied
// when the OAuth host confirms the app is gone (the stored chain no longer works). A chain that still
// works means the app is installed: refused, nothing changes. When the host cannot be asked, the
// portal is marked and the next refresh decides.

import type { UninstallEvent } from '../events/types.js';
import { applicationTokenRefusal } from '../oauth/verify.js';
import type { PortalRecord } from '../store/token-store.js';
import { notifySafely, runHook, type LifecycleKit } from './kit.js';
import { chainStatus } from './probe.js';

/** The `revokedReason` of a portal whose uninstall waits for the OAuth host's confirmation. */
export const UNINSTALL_PENDING = 'UNINSTALL_PENDING';

/** What an uninstall did: nothing was stored, it was applied, or it waits for the next refresh. */
export type UninstallResult = { readonly kind: 'unknown' } | { readonly kind: 'removed'; readonly confirmed: boolean } | { readonly kind: 'pending' };

/**
 * Decides a parsed ONAPPUNINSTALL and writes what it decided.
 * @throws the kit's refusal or failure (`kit.answers`) when nothing may change or the store failed.
 */
export async function uninstall(kit: LifecycleKit, event: UninstallEvent): Promise<UninstallResult> {
  const { context, logger } = kit;
  const memberId = event.auth.memberId;
  let existing: PortalRecord | undefined;
  try {
    existing = await context.store.get(memberId);
  } catch (error) {
    throw kit.answers.storeFailure(error, event, 'get');
  }
  if (existing === undefined) {
    logger.info({ memberId, event: event.event }, 'Uninstall for a portal with no record; nothing to do');
    return { kind: 'unknown' };
  }
  const refused = applicationTokenRefusal(event.auth.applicationToken, existing);
  if (refused !== undefined) throw kit.answers.refuse(refused, event);

  const status = existing.state === 'revoked' ? 'dead' : await chainStatus(context, logger, existing);
  if (status === 'alive') throw kit.answers.refuse('app_still_installed', event);
  if (status === 'unreachable') {
    // Keep the chain; the next refresh confirms (a dead chain is then revoked) or clears the mark.
    try {
      await context.store.update(memberId, existing.version, { revokedReason: UNINSTALL_PENDING, updatedAt: context.clock.now() });
    } catch (error) {
      throw kit.answers.storeFailure(error, event, 'update');
    }
    logger.warn({ memberId, event: event.event }, 'Uninstall could not be confirmed with the OAuth host; the portal is marked and its next refresh decides');
    return { kind: 'pending' };
  }
  try {
    // The portal's own chain and every user's: an uninstall revokes them all.
    await context.store.deletePortal(memberId);
  } catch (error) {
    throw kit.answers.storeFailure(error, event, 'delete');
  }
  notifySafely(kit, { type: 'uninstalled', memberId });
  logger.info({ memberId, event: event.event, clean: event.clean }, 'Portal uninstalled');
  const hook = kit.onUninstalled;
  const record = existing;
  // runHook never throws: a failing hook is logged there.
  if (hook !== undefined) await runHook(kit, 'onUninstalled', memberId, () => hook(event, record, { confirmed: true }));
  return { kind: 'removed', confirmed: true };
}
