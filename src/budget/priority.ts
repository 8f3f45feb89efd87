// Low-priority REST requests: the calls a REST event listener makes (or any code run inside
// `withBudgetShare`) first take a turn of a smaller budget of their own, `share:<memberId>`, a
// fraction of the portal's, then the portal's slot as usual. So they reach the portal's budget at
// most at that fraction of its rate and burst, and the rest stays free for the app's own calls: a
// flood of events can delay other listeners, never the portal's own requests.

import { AsyncLocalStorage } from 'node:async_hooks';
import type { Clock } from '../clock.js';
import type { RateLimitedError } from '../errors.js';
import type { BudgetGrant, BudgetSpec } from '../store/token-store.js';

const shares = new AsyncLocalStorage<number>();

/** Checks a share of a portal's budget: a number in (0, 1]. */
export function checkBudgetShare(share: unknown, name: string): number {
  if (typeof share !== 'number' || !(share > 0 && share <= 1)) throw new TypeError(`${name} must be a number in (0, 1]`);
  return share;
}

/**
 * Runs `fn` at low priority: the REST requests it makes (through any pooled client) may use at most
 * `share` of each portal's request budget (its rate and its burst), leaving the rest to requests
 * made outside. The event handler runs every listener this way (`listenerBudgetShare`).
 *
 * @example
 * ```ts
 * await withBudgetShare(0.25, () => b24.actions.v2.call.make({ method: 'crm.deal.list' })); // a background job
 * ```
 */
export function withBudgetShare<T>(share: number, fn: () => T): T {
  return shares.run(checkBudgetShare(share, 'share'), fn);
}

/** What {@link shareTurn} needs of the budget. */
export interface ShareTurnHooks {
  readonly acquire: (key: string, spec: BudgetSpec) => Promise<BudgetGrant>;
  readonly clock: Clock;
  /** The error of a turn that would wait past `maxWaitMs` (`'rate'`) or whose signal fired (`'aborted'`). */
  readonly refused: (waitMs: number, reason: 'rate' | 'aborted') => RateLimitedError;
}

/**
 * Inside {@link withBudgetShare}: waits for a turn of the portal's low-priority budget (`spec`
 * scaled by the share). Outside: returns at once.
 * @throws RateLimitedError when the turn would wait past `maxWaitMs` (nothing taken).
 */
export async function shareTurn(
  memberId: string,
  spec: BudgetSpec,
  maxWaitMs: number | undefined,
  signal: AbortSignal | undefined,
  hooks: ShareTurnHooks,
): Promise<void> {
  const share = shares.getStore();
  if (share === undefined || share >= 1) return;
  const scaled: BudgetSpec = { ratePerSec: spec.ratePerSec * share, burst: Math.max(1, Math.floor(spec.burst * share)) };
  const grant = await hooks.acquire(`share:${memberId}`, maxWaitMs === undefined ? scaled : { ...scaled, maxWaitMs });
  if (!grant.granted) throw hooks.refused(grant.waitMs, 'rate');
  if (grant.waitMs <= 0) return;
  try {
    await hooks.clock.sleep(grant.waitMs, signal);
  } catch (error) {
    if (signal?.aborted === true) throw hooks.refused(grant.waitMs, 'aborted');
    throw error;
  }
}
