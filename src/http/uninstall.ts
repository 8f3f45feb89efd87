// ONAPPUNINSTALL: the event's application_token must match the stored one (compared in constant time);
// then every chain of the portal is deleted. Unknown portals answer 200: the answer reveals nothing.

import type { UninstallEvent } from '../events/types.js';
import { applicationTokenRefusal } from '../oauth/verify.js';
import { jsonResponse, type PlainResponse } from '../plain.js';
import type { PortalRecord } from '../store/token-store.js';
import { notifySafely, refusal, runHook, storeFailure, type LifecycleKit } from './lifecycle-kit.js';

/** Handles a parsed ONAPPUNINSTALL. */
export async function handleUninstall(kit: LifecycleKit, event: UninstallEvent): Promise<PlainResponse> {
  const { context, logger } = kit;
  const memberId = event.auth.memberId;
  let existing: PortalRecord | undefined;
  try {
    existing = await context.store.get(memberId);
  } catch (error) {
    throw storeFailure(kit, error, event, 'get');
  }
  if (existing === undefined) {
    logger.info({ memberId, event: event.event }, 'Uninstall for a portal with no record; nothing to do');
    return jsonResponse(200, { ok: true });
  }
  const refused = applicationTokenRefusal(event.auth.applicationToken, existing);
  if (refused !== undefined) throw refusal(kit, refused, event);
  try {
    // The portal's own chain and every user's: an uninstall revokes them all.
    await context.store.deletePortal(memberId);
  } catch (error) {
    throw storeFailure(kit, error, event, 'delete');
  }
  notifySafely(kit, { type: 'uninstalled', memberId });
  logger.info({ memberId, event: event.event, clean: event.clean }, 'Portal uninstalled');
  const hook = kit.onUninstalled;
  const record = existing;
  if (hook !== undefined) await runHook(kit, 'onUninstalled', memberId, () => hook(event, record));
  return jsonResponse(200, { ok: true });
}
