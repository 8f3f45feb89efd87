// The install spool's replay, decided: one more door into the same rules. An entry is a proven
// install or update the store could not take; applying it never lands over a newer event or over
// its own pair (it is idempotent); it takes the place of a live chain only as an install would (an
// administrator's entry over a chain that is not a live administrator's, anyone's over a dead one);
// and over a stored chain only its own chain, proven alive now, is written (a chain that died
// meanwhile, with an uninstall or a refresh, never replaces one). An uninstall drains the spool before it decides
// (src/chains/uninstall.ts).

import { OAuthRejectedError, StoreError } from '../errors.js';
import { describeError } from '../logger.js';
import { trustedBaseForServerEndpoint } from '../protocol/oauth-hosts.js';
import type { SpooledEntry } from '../spool/entry.js';
import type { SpoolApplyOutcome } from '../spool/file-spool.js';
import type { PortalRecord, PortalRecordInput } from '../store/token-store.js';
import { notifySafely, type LifecycleKit } from './kit.js';
import { chainStatus, probeAccess, storedAuthority } from './probe.js';
import { writeChain } from './write.js';

/** What replaying an entry needs of the handler's settings. */
type ReplayKit = Pick<LifecycleKit, 'context' | 'logger' | 'trusted' | 'spool'>;

/**
 * Whether `entry` may be written over `current` (the chain stored now), by the store's history.
 * Applying an entry is idempotent: an entry whose pair is stored already, or whose event is not
 * newer than the stored chain's (it was applied before and the chain moved on, by a refresh that
 * spent its pair, or a newer event came), changes nothing; except that an administrator's entry
 * replaces a chain that is not a live administrator's (`'if-not-administrator'`: asked at the OAuth
 * host and the portal). A second apply happens when the store saved a write whose answer was lost,
 * or a drainer died between writing and removing the entry.
 */
function supersedes(entry: SpooledEntry, current: PortalRecord | undefined): boolean | 'if-not-administrator' {
  if (current === undefined) return true;
  if (current.refreshToken === entry.record.refreshToken) return false;
  if (entry.replace === 'if-absent' && current.state === 'active') return false;
  // Two events of one second carry one `ts`: of those, the entry whose pair was issued later than
  // the stored one is the newer (a pair applied before and then refreshed is older than the stored).
  // Pairs of one second too are told apart by when each was taken (`chainUpdatedAt`, ms).
  const laterPair = entry.record.expires > current.expires || (entry.record.expires === current.expires && entry.record.chainUpdatedAt > current.chainUpdatedAt);
  const sameSecondNewerPair = current.eventTs !== null && entry.ts === current.eventTs && laterPair;
  if (current.eventTs !== null && entry.ts <= current.eventTs && !sameSecondNewerPair) {
    // An administrator's entry still replaces a chain that is not a live administrator's.
    return entry.admin === true && current.state === 'active' && current.chain === 'portal' ? 'if-not-administrator' : false;
  }
  return true;
}

/**
 * Whether the entry may take the place of the live chain stored now, as an install would: an
 * administrator's entry replaces any chain but a live administrator's; anyone else's only a chain
 * the OAuth host says is dead. `'retry'` when the host could not be asked.
 */
async function mayReplace(kit: ReplayKit, entry: SpooledEntry, current: PortalRecord | undefined, decided: true | 'if-not-administrator'): Promise<true | 'stale' | 'retry'> {
  if (current === undefined || current.state !== 'active') return true;
  if (entry.admin === true) {
    // A newer administrator's event replaces whatever is stored; an older one only a chain that is
    // not a live administrator's.
    if (decided === true) return true;
    const authority = await storedAuthority(kit.context, () => chainStatus(kit.context, kit.logger, current), current.memberId);
    return authority === 'unreachable' ? 'retry' : authority === 'administrator' ? 'stale' : true;
  }
  const status = await chainStatus(kit.context, kit.logger, current);
  return status === 'dead' ? true : status === 'alive' ? 'stale' : 'retry';
}

/**
 * The entry's own chain, proven alive at a trusted OAuth host now: as spooled while its access
 * token answers `app.info`, or refreshed (the fresh pair is what gets written) once it merely
 * expired. A chain the host refuses (the app was uninstalled, or the pair was spent by a refresh
 * after an earlier apply) is `'stale'`: it never comes back.
 */
async function proveEntry(kit: ReplayKit, entry: SpooledEntry): Promise<{ record: PortalRecordInput; refreshed: boolean } | 'stale' | 'retry'> {
  const { oauth, clock } = kit.context;
  const record = entry.record;
  const base = trustedBaseForServerEndpoint(record.serverEndpoint, kit.trusted);
  if (base === undefined) return 'stale';
  const probed = await probeAccess(oauth, { ...record, chain: record.chain ?? 'portal', state: 'active' } as PortalRecord);
  if (probed === 'alive') return { record, refreshed: false };
  if (probed === 'unreachable') return 'retry';
  if (probed === 'dead') return 'stale';
  try {
    const tokens = await oauth.refresh(base, record.refreshToken);
    if (tokens.memberId !== entry.memberId) return 'stale';
    const now = clock.now();
    const fresh = { ...record, accessToken: tokens.accessToken, refreshToken: tokens.refreshToken ?? record.refreshToken, expires: tokens.expires, updatedAt: now, chainUpdatedAt: now };
    return { record: fresh, refreshed: true };
  } catch (error) {
    if (error instanceof OAuthRejectedError) return 'stale';
    kit.logger.warn({ memberId: entry.memberId, err: describeError(error) }, "Could not prove a spooled entry's chain with the OAuth host; kept for the next drain");
    return 'retry';
  }
}

/** Applies one spooled event now that the store answers. */
export async function applySpooled(kit: ReplayKit, entry: SpooledEntry): Promise<SpoolApplyOutcome> {
  const { store } = kit.context;
  const chain = entry.record.chain ?? 'portal';
  const key = { memberId: entry.memberId, chain };
  let refreshed: PortalRecordInput | undefined;
  try {
    const current = await store.get(key);
    const decided = supersedes(entry, current);
    if (decided === false) return 'stale';
    const allowed = await mayReplace(kit, entry, current, decided);
    if (allowed !== true) return allowed;
    // Where nothing is stored, nothing live can be lost: the entry is written as spooled (an
    // uninstall that drains the spool first then decides over it). Over a stored chain, only a
    // chain proven alive now.
    const proven = current === undefined ? { record: entry.record, refreshed: false } : await proveEntry(kit, entry);
    if (typeof proven === 'string') return proven;
    if (proven.refreshed) refreshed = proven.record;
    const { memberId, chain: _chain, ...patch } = proven.record;
    // The checks may have refreshed the stored chain (a pool confirms by refreshing): the chain
    // checked, moved on, may still be replaced; anything else stored meanwhile is decided afresh.
    const continues = (now: PortalRecord): boolean => current !== undefined && now.userId === current.userId && now.state === current.state && now.chain === current.chain;
    const base = current === undefined ? undefined : await store.get(key);
    if (current !== undefined && (base === undefined || !continues(base))) return await respool(kit, entry, refreshed, 'retry');
    const outcome = await writeChain<'retry'>({
      store,
      key: { memberId, chain },
      base,
      create: proven.record,
      patch: () => ({ ...patch, eventTs: entry.record.eventTs ?? null }),
      onConflict: (now) => (now !== undefined && continues(now) ? { retry: now } : { stop: 'retry' }),
    });
    if (!('written' in outcome)) return await respool(kit, entry, refreshed, 'retry');
    notifySafely(kit, { type: entry.kind === 'install' ? 'installed' : 'updated', memberId: entry.memberId });
    kit.logger.info({ memberId: entry.memberId, event: entry.kind }, 'Applied a spooled lifecycle event');
    return 'applied';
  } catch (error) {
    if (error instanceof StoreError && error.transient) return respool(kit, entry, refreshed, 'retry');
    throw error;
  }
}

/**
 * An entry that was not written: kept for the next drain. When its chain was refreshed while
 * proving it, the spooled pair is spent: the fresh one is spooled in its place (the old entry ends).
 */
async function respool(kit: ReplayKit, entry: SpooledEntry, refreshed: PortalRecordInput | undefined, outcome: 'retry'): Promise<SpoolApplyOutcome> {
  if (refreshed === undefined) return outcome;
  const { id: _id, spooledAt: _spooledAt, ...kept } = entry;
  try {
    await kit.spool?.put({ ...kept, record: refreshed });
    return 'stale';
  } catch (error) {
    kit.logger.error({ memberId: entry.memberId, err: describeError(error) }, "A spooled entry's refreshed chain could not be spooled again; it is lost");
    return 'stale';
  }
}
