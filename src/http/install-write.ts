// Writing a proven chain: the conditional write fenced by the store's history, what the OAuth host
// says about the stored chain, and the replay of events the install spool kept during an outage.

import type { ChainStatus } from '../context.js';
import { OAuthRejectedError, StoreError } from '../errors.js';
import type { InstallEvent, UpdateEvent } from '../events/types.js';
import { describeError } from '../logger.js';
import { oauthBaseFromServerEndpoint } from '../protocol/oauth-hosts.js';
import type { SpooledEntry } from '../spool/entry.js';
import type { SpoolApplyOutcome } from '../spool/file-spool.js';
import type { PortalRecord, PortalRecordInput } from '../store/token-store.js';
import { notifySafely, storeFailure, type LifecycleKit } from './lifecycle-kit.js';

const WRITE_ATTEMPTS = 5;

/** Whether an event with `ts` is not newer than the stored chain's event (`null`: unknown, never stale). */
export function isStale(ts: number | null, storedTs: number | null): boolean {
  return ts !== null && storedTs !== null && ts < storedTs;
}

/**
 * What the OAuth host says about the portal's stored chain. A pool answers with its coordinator;
 * any other context is asked with `app.info` alone, conservatively (an expired access token proves
 * nothing either way).
 */
export async function chainStatus(kit: LifecycleKit, memberId: string, stored: PortalRecord): Promise<ChainStatus> {
  const { context } = kit;
  try {
    if (context.confirmChain !== undefined) return await context.confirmChain(memberId);
    const info = await context.oauth.appInfo(oauthBaseFromServerEndpoint(stored.serverEndpoint), stored.accessToken);
    return info.memberId === memberId ? 'alive' : 'dead';
  } catch (error) {
    if (error instanceof OAuthRejectedError && error.oauthError !== 'expired_token') return 'dead';
    kit.logger.warn({ memberId, err: describeError(error) }, 'Could not ask the OAuth host about the stored chain');
    return 'unreachable';
  }
}

/**
 * Writes a proven chain: an upsert for a new portal, else a conditional write on the version read,
 * re-checked against the store's history on every conflict. `'stale'` when a newer event got
 * there first; `'spool'` when the store is unreachable and a spool is configured.
 */
export async function writeVerified(
  kit: LifecycleKit,
  event: InstallEvent | UpdateEvent,
  existing: PortalRecord | undefined,
  record: PortalRecordInput,
): Promise<PortalRecord | 'stale' | 'spool'> {
  let base = existing;
  for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
    try {
      if (base === undefined) return await kit.context.store.upsert(record);
      const { memberId, chain: _chain, ...patch } = record;
      const result = await kit.context.store.update(memberId, base.version, { ...patch, eventTs: record.eventTs ?? null });
      if (result.ok) return result.record;
      if (result.current !== undefined && isStale(event.ts, result.current.eventTs)) return 'stale';
      base = result.current;
    } catch (error) {
      if (error instanceof StoreError && error.transient && kit.spool !== undefined) return 'spool';
      throw storeFailure(kit, error, event, base === undefined ? 'upsert' : 'update');
    }
  }
  throw storeFailure(kit, new StoreError('The record kept changing', { memberId: record.memberId }), event, 'update');
}

/**
 * Applies one spooled event now that the store answers: never over a newer event, and an entry
 * that was not proven an administrator's only where no active chain is stored.
 */
export async function applySpooled(kit: LifecycleKit, entry: SpooledEntry): Promise<SpoolApplyOutcome> {
  const { store } = kit.context;
  const chain = entry.record.chain ?? 'portal';
  try {
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const current = await store.get({ memberId: entry.memberId, chain });
      if (current !== undefined && isStale(entry.ts, current.eventTs)) return 'stale';
      if (entry.replace === 'if-absent' && current?.state === 'active') return 'stale';
      if (current === undefined) {
        await store.upsert(entry.record);
      } else {
        const { memberId, chain: _chain, ...patch } = entry.record;
        const result = await store.update({ memberId, chain }, current.version, { ...patch, eventTs: entry.record.eventTs ?? null });
        if (!result.ok) continue;
      }
      notifySafely(kit, { type: entry.kind === 'install' ? 'installed' : 'updated', memberId: entry.memberId });
      kit.logger.info({ memberId: entry.memberId, event: entry.kind }, 'Applied a spooled lifecycle event');
      return 'applied';
    }
    return 'retry';
  } catch (error) {
    if (error instanceof StoreError && error.transient) return 'retry';
    throw error;
  }
}
