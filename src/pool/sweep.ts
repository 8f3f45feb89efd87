// The keep-alive sweep: pages through the store and refreshes chains idle for too long, so their
// refresh tokens never lapse. Workers may sweep at once: the coordinator keeps each chain to one refresh.

import type { Clock } from '../clock.js';
import type { RefreshCoordinator } from '../coordinator/coordinator.js';
import type { PortalRecord, TokenStore } from '../store/token-store.js';
import { walkStore } from '../store/walk.js';

/** Options of {@link PortalClientPool.sweep}. */
export interface SweepOptions {
  /** Refresh active chains whose pair has not changed for longer than this, days. @defaultValue 20 */
  readonly idleDays?: number | undefined;
  /** At most this many refreshes at once. @defaultValue 4 */
  readonly concurrency?: number | undefined;
  /** Records read per store page. @defaultValue 100 */
  readonly pageSize?: number | undefined;
  /**
   * Also keep users' chains alive. Off by default: a user's chain that lapses comes back at the
   * user's next visit, and each kept chain costs a refresh per sweep. @defaultValue false
   */
  readonly userChains?: boolean | undefined;
  /** Stops the sweep between portals when aborted. */
  readonly signal?: AbortSignal | undefined;
}

/** What a sweep did. */
export interface SweepResult {
  /** Records examined. */
  readonly checked: number;
  /** Chains refreshed (or adopted from another worker that refreshed first). */
  readonly refreshed: number;
  /** Portals found revoked by the OAuth server during the sweep. */
  readonly revoked: number;
  /** Refreshes that failed transiently; the sweep goes on. */
  readonly failed: number;
  /** Records the store could not read (an encrypted record that does not open): skipped, the sweep went on. */
  readonly unreadable: readonly SweepUnreadable[];
}

/** A record a sweep skipped because the store could not read it. */
export interface SweepUnreadable {
  /** The portal. */
  readonly memberId: string;
  /** The chain. */
  readonly chain: string;
  /** The error's code (`DECRYPTION_FAILED` for a record that does not open). */
  readonly code: string;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`${name} must be a non-negative finite number`);
  }
  return value;
}

/** Runs one sweep; `adopted` hands each fresh record to the cache. */
export async function runSweep(
  store: TokenStore,
  coordinator: RefreshCoordinator,
  clock: Clock,
  options: SweepOptions,
  adopted: (record: PortalRecord) => void,
): Promise<SweepResult> {
  if (store.list === undefined || !store.capabilities.list) throw new TypeError('sweep needs a store with the list capability');
  const idleMs = nonNegative('idleDays', options.idleDays, 20) * 86_400_000;
  const concurrency = Math.max(1, Math.floor(nonNegative('concurrency', options.concurrency, 4)));
  const pageSize = Math.max(1, Math.floor(nonNegative('pageSize', options.pageSize, 100)));
  const result = { checked: 0, refreshed: 0, revoked: 0, failed: 0 };
  const unreadable: SweepUnreadable[] = [];
  const running = new Set<Promise<void>>();
  const visit = async (record: PortalRecord): Promise<void> => {
    result.checked++;
    if (record.state !== 'active' || clock.now() - record.chainUpdatedAt <= idleMs) return;
    const job = coordinator.keepAlive(record, idleMs).then(({ outcome, record: fresh }) => {
      result[outcome]++;
      if (fresh !== undefined) adopted(fresh);
    });
    const tracked: Promise<void> = job.finally(() => running.delete(tracked));
    running.add(tracked);
    if (running.size >= concurrency) await Promise.race(running);
  };
  // One record that cannot be read (an encrypted record that does not open) is reported and
  // skipped: the sweep goes on for every other portal.
  for await (const page of walkStore(store, { pageSize, userChains: options.userChains === true, signal: options.signal })) {
    for (const item of page.unreadable) unreadable.push({ memberId: item.memberId, chain: item.chain, code: item.error.code });
    for (const record of page.records) {
      if (options.signal?.aborted) break;
      await visit(record);
    }
  }
  await Promise.all(running);
  return { ...result, unreadable };
}
