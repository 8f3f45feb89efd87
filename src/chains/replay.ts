// The install spool's replay, decided: one more door into the same rules. An entry is a proven
// install or update the store could not take; applying it never lands over a newer event or over
// its own pair (it is idempotent), and an entry that was not proven an administrator's only where
// no active chain is stored. An uninstall drains the spool before it decides (src/chains/uninstall.ts).

import { StoreError } from '../errors.js';
import type { SpooledEntry } from '../spool/entry.js';
import type { SpoolApplyOutcome } from '../spool/file-spool.js';
import type { PortalRecord } from '../store/token-store.js';
import { notifySafely, type LifecycleKit } from './kit.js';
import { chainStatus, storedAuthority } from './probe.js';
import { writeChain } from './write.js';

/**
 * Whether `entry` may be written over `current` (the chain stored now). Applying an entry is
 * idempotent: an entry whose pair is stored already, or whose event is not newer than the stored
 * chain's (it was applied before and the chain moved on, by a refresh that spent its pair, or a
 * newer event came), changes nothing; except that an administrator's entry replaces a chain that is
 * not a live administrator's (`'if-not-administrator'`: asked at the OAuth host and the portal). A second apply happens when the store saved a write whose
 * answer was lost, or a drainer died between writing and removing the entry.
 */
function supersedes(entry: SpooledEntry, current: PortalRecord | undefined): boolean | 'if-not-administrator' {
  if (current === undefined) return true;
  if (current.refreshToken === entry.record.refreshToken) return false;
  if (entry.replace === 'if-absent' && current.state === 'active') return false;
  // Two events of one second carry one `ts`: of those, the entry whose pair was issued later than
  // the stored one is the newer (a pair applied before and then refreshed is older than the stored).
  const sameSecondNewerPair = current.eventTs !== null && entry.ts === current.eventTs && entry.record.expires > current.expires;
  if (current.eventTs !== null && entry.ts <= current.eventTs && !sameSecondNewerPair) {
    // An administrator's entry still replaces a chain that is not a live administrator's.
    return entry.admin === true && current.state === 'active' && current.chain === 'portal' ? 'if-not-administrator' : false;
  }
  return true;
}

/** {@link supersedes}, settling "not an administrator's" at the OAuth host and the portal. */
async function mayWrite(kit: Pick<LifecycleKit, 'context' | 'logger'>, entry: SpooledEntry, current: PortalRecord | undefined): Promise<boolean> {
  const decided = supersedes(entry, current);
  if (decided !== 'if-not-administrator' || current === undefined) return decided === true;
  const authority = await storedAuthority(kit.context, () => chainStatus(kit.context, kit.logger, current), current.memberId);
  return authority === 'not-administrator' || authority === 'dead';
}

/** Applies one spooled event now that the store answers. */
export async function applySpooled(kit: Pick<LifecycleKit, 'context' | 'logger'>, entry: SpooledEntry): Promise<SpoolApplyOutcome> {
  const { store } = kit.context;
  const chain = entry.record.chain ?? 'portal';
  const { memberId, chain: _chain, ...patch } = entry.record;
  try {
    const current = await store.get({ memberId: entry.memberId, chain });
    if (!(await mayWrite(kit, entry, current))) return 'stale';
    const outcome = await writeChain<'stale'>({
      store,
      key: { memberId, chain },
      base: current,
      create: entry.record,
      patch: () => ({ ...patch, eventTs: entry.record.eventTs ?? null }),
      onConflict: (now) => (supersedes(entry, now) === true ? { retry: now } : { stop: 'stale' }),
    });
    if ('stopped' in outcome) return 'stale';
    if ('exhausted' in outcome) return 'retry';
    notifySafely(kit, { type: entry.kind === 'install' ? 'installed' : 'updated', memberId: entry.memberId });
    kit.logger.info({ memberId: entry.memberId, event: entry.kind }, 'Applied a spooled lifecycle event');
    return 'applied';
  } catch (error) {
    if (error instanceof StoreError && error.transient) return 'retry';
    throw error;
  }
}
