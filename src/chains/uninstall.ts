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
import { writeChain } from './write.js';

/** The `revokedReason` of a portal whose uninstall waits for the OAuth host's confirmation. */
export const UNINSTALL_PENDING = 'UNINSTALL_PENDING';

/** What an uninstall did: nothing was stored, it was applied, or it waits for the next refresh. */
export type UninstallResult = { readonly kind: 'unknown' } | { readonly kind: 'removed'; readonly confirmed: boolean } | { readonly kind: 'pending' };

/** The `revokedReason` of the tombstone an uninstall leaves on each chain just before it deletes them. */
const UNINSTALLED = 'uninstalled';

/**
 * Decides a parsed ONAPPUNINSTALL and writes what it decided:
 * - a spooled install waiting for the store is applied first, so that this later uninstall decides
 *   over it (and a replay never brings the portal back);
 * - every chain of the portal that is not known dead (the portal's and every user's) is probed:
 *   any chain that still works means the app is installed (refused, nothing changes); one the
 *   host cannot be asked about leaves the portal marked for its next refresh;
 * - confirmed (a chain that was alive is now refused): every chain is deleted; with no chain
 *   alive to ask, only dead records are removed and the hook hears `confirmed: false`;
 * - the delete is fenced by what was checked: each chain is first marked on the version read after
 *   its probe, so an install that lands meanwhile stops the uninstall instead of being deleted.
 * @throws the kit's refusal or failure (`kit.answers`) when nothing may change or the store failed.
 */
export async function uninstall(kit: LifecycleKit, event: UninstallEvent): Promise<UninstallResult> {
  const { context, logger } = kit;
  const memberId = event.auth.memberId;
  await kit.replaySpool?.();
  let existing: PortalRecord | undefined;
  let chains: readonly PortalRecord[];
  try {
    existing = await context.store.get(memberId);
    chains = existing === undefined ? [] : [existing, ...((await context.store.listChains?.(memberId)) ?? [])];
  } catch (error) {
    throw kit.answers.storeFailure(error, event, 'get');
  }
  if (existing === undefined) {
    logger.info({ memberId, event: event.event }, 'Uninstall for a portal with no record; nothing to do');
    return { kind: 'unknown' };
  }
  const refused = applicationTokenRefusal(event.auth.applicationToken, existing);
  if (refused !== undefined) throw kit.answers.refuse(refused, event);

  // Revoked is not uninstalled: only a chain that may still work can confirm the app is gone.
  const asked = chains.filter((chain) => chain.state !== 'revoked' && chain.refreshToken !== '');
  let unreachable = false;
  for (const chain of asked) {
    const status = await chainStatus(context, logger, chain);
    if (status === 'alive') throw kit.answers.refuse('app_still_installed', event);
    if (status === 'unreachable') unreachable = true;
  }
  if (unreachable) {
    // Keep the chains; the next refresh confirms (a dead chain is then revoked) or clears the mark.
    try {
      await context.store.update(memberId, existing.version, { revokedReason: UNINSTALL_PENDING, updatedAt: context.clock.now() });
    } catch (error) {
      throw kit.answers.storeFailure(error, event, 'update');
    }
    logger.warn({ memberId, event: event.event }, 'Uninstall could not be confirmed with the OAuth host; the portal is marked and its next refresh decides');
    return { kind: 'pending' };
  }
  const confirmed = asked.length > 0;
  let fenced: boolean;
  try {
    fenced = await markUninstalled(kit, memberId, chains);
    // The portal's own chain and every user's: an uninstall removes them all.
    if (fenced) await context.store.deletePortal(memberId);
  } catch (error) {
    throw kit.answers.storeFailure(error, event, 'delete');
  }
  if (!fenced) {
    // A chain that was not checked landed meanwhile (a reinstall): the app is installed.
    throw kit.answers.refuse('app_still_installed', event);
  }
  notifySafely(kit, { type: 'uninstalled', memberId });
  logger.info({ memberId, event: event.event, clean: event.clean, confirmed }, confirmed ? 'Portal uninstalled' : 'Portal records removed; the uninstall was not confirmed (no chain was alive to ask)');
  const hook = kit.onUninstalled;
  const record = existing;
  // Unconfirmed, the app may still be installed: its data is kept, whatever the event asked.
  const told = confirmed ? event : { ...event, clean: false };
  // runHook never throws: a failing hook is logged there.
  if (hook !== undefined) await runHook(kit, 'onUninstalled', memberId, () => hook(told, record, { confirmed }));
  return { kind: 'removed', confirmed };
}

/**
 * Marks every chain checked as uninstalled (tokens gone), each on the version stored now, and only
 * while it still holds the chain that was checked: `false` when a chain that was not checked is
 * stored meanwhile (a reinstall, a new user chain), and then nothing more is marked.
 */
async function markUninstalled(kit: LifecycleKit, memberId: string, checked: readonly PortalRecord[]): Promise<boolean> {
  const { store } = kit.context;
  const now = kit.context.clock.now();
  const pairs = new Map(checked.map((record) => [record.chain, record.refreshToken]));
  const current = [await store.get(memberId), ...((await store.listChains?.(memberId)) ?? [])].filter((record) => record !== undefined);
  const untouched = (record: PortalRecord | undefined): boolean =>
    record === undefined || record.refreshToken === '' || record.refreshToken === pairs.get(record.chain) || record.revokedReason === UNINSTALLED;
  if (!current.every(untouched)) return false;
  for (const record of current) {
    const outcome = await writeChain<boolean>({
      store,
      key: { memberId, chain: record.chain },
      base: record,
      patch: () => ({ state: 'revoked', revokedReason: UNINSTALLED, revokedAt: now, updatedAt: now, accessToken: '', refreshToken: '' }),
      onConflict: (stored) => (untouched(stored) ? (stored === undefined ? { stop: true } : { retry: stored }) : { stop: false }),
    });
    if ('stopped' in outcome && !outcome.stopped) return false;
    if ('exhausted' in outcome) return false;
  }
  return true;
}
