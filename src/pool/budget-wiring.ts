// The pool's request budget (src/budget/budget.ts) wired from the pool's options: the limits checked,
// its events routed to the pool's, and its counts summed for PoolStats.

import type { Clock } from '../clock.js';
import { callOption, InvalidOptionsError } from '../errors/options.js';
import type { Logger } from '../logger.js';
import type { PoolStats } from '../pool-events.js';
import { RequestBudget, SDK_LIMITER_OFF, type BudgetEvent, type RequestBudgetLimits } from '../budget/budget.js';
import { HeadroomLearner } from '../budget/headroom.js';
import { InvalidArgumentError } from '../errors.js';
import type { TokenStore } from '../store/token-store.js';
import type { PortalClientPoolOptions } from './options.js';
import { resolveMaxResponseBytes, type SdkClientSettings } from '../sdk/client.js';
import { resolveRestRootRules } from '../guard/rest-roots.js';

/** The pool's request budget from its options; `undefined` when turned off. */
export function createBudget(
  options: PortalClientPoolOptions,
  store: TokenStore,
  clock: Clock,
  logger: Logger,
  emit: (event: 'budget-wait' | 'budget-push-back' | 'query-limit-exceeded', payload: BudgetEvent) => void,
): RequestBudget | undefined {
  const option = options.requestBudget;
  if (option === false) return undefined;
  const check = (limits: RequestBudgetLimits, where: string, memberId?: string): RequestBudgetLimits => {
    if (typeof limits !== 'object' || limits === null || !(limits.ratePerSec > 0) || !Number.isFinite(limits.ratePerSec) || !(limits.burst >= 1) || !Number.isFinite(limits.burst)) {
      throw new InvalidOptionsError('requestBudget', `${where} must be { ratePerSec > 0, burst >= 1 }`, { memberId });
    }
    return limits;
  };
  // undefined: the portal's plan (as an app.info answer named it; the standard plan until one does).
  let limitsFor: (memberId: string) => RequestBudgetLimits | undefined;
  if (typeof option === 'function') {
    // The user's function runs inside the budget's loop: a throw or a bad answer fails the call
    // that needed it (InvalidOptionsError), never the loop, the process or another portal.
    limitsFor = (memberId) => {
      const limits = callOption('requestBudget(memberId)', () => option(memberId), { memberId });
      return limits === undefined ? undefined : check(limits, 'requestBudget(memberId)', memberId);
    };
  } else {
    const fixed = option === undefined ? undefined : check(option, 'requestBudget');
    limitsFor = () => fixed;
  }
  const headroom = headroomOf(options.budgetHeadroom, clock);
  const localShare = options.localBudgetShare ?? 1;
  if (!(localShare > 0 && localShare <= 1)) throw new InvalidOptionsError('localBudgetShare', 'localBudgetShare must be in (0, 1]');
  const maxWaitMs = options.maxBudgetWaitMs ?? Number.POSITIVE_INFINITY;
  if (!(maxWaitMs >= 0)) throw new InvalidOptionsError('maxBudgetWaitMs', 'maxBudgetWaitMs must be a number >= 0');
  // The operating-time account keeps a fixed margin even when the rate's headroom is learned: a 503
  // says nothing about operating time, the account only hears of a request's time once it answered
  // (heavy requests in flight overrun it), and a 429 holds the method for up to 10 minutes where a
  // 503 costs a second. A fixed budgetHeadroom applies to both, as before.
  const operatingHeadroom = typeof headroom === 'number' ? headroom : OPERATING_HEADROOM;
  return new RequestBudget({ store, limitsFor, headroom, operatingHeadroom, maxWaitMs, localShare, clock, logger, emit });
}

/** The share of a method's operating time (480 s per 10 minutes) the budget uses unless `budgetHeadroom` fixes one. */
const OPERATING_HEADROOM = 0.8;

/** `budgetHeadroom`: a number is a fixed share; nothing or the learner's settings, a learned one. */
function headroomOf(option: PortalClientPoolOptions['budgetHeadroom'], clock: Clock): number | HeadroomLearner {
  if (typeof option === 'number') {
    if (!(option > 0 && option <= 1)) throw new InvalidOptionsError('budgetHeadroom', 'budgetHeadroom must be in (0, 1]');
    return option;
  }
  if (option !== undefined && (typeof option !== 'object' || option === null)) {
    throw new InvalidOptionsError('budgetHeadroom', 'budgetHeadroom must be a number in (0, 1] or the learned headroom\'s settings');
  }
  try {
    return new HeadroomLearner(clock, option);
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw new InvalidOptionsError('budgetHeadroom', `budgetHeadroom: ${error.message}`, { cause: error });
    throw error;
  }
}

/** The budget's fields of PoolStats. */
export function budgetTotals(budget: RequestBudget | undefined): Pick<PoolStats, 'budgetWaits' | 'budgetPushBacks' | 'queryLimitExceeded' | 'budgets'> {
  const budgets = budget?.stats() ?? {};
  let budgetWaits = 0;
  let budgetPushBacks = 0;
  let queryLimitExceeded = 0;
  for (const stats of Object.values(budgets)) {
    budgetWaits += stats.waits;
    budgetPushBacks += stats.pushBacks;
    queryLimitExceeded += stats.queryLimitExceeded;
  }
  return { budgetWaits, budgetPushBacks, queryLimitExceeded, budgets };
}

/**
 * The settings every SDK client of the pool gets: with the pool's budget on, the SDK's own
 * per-process limiter is switched off (it would otherwise stack on the budget).
 */
export function sdkSettings(options: PortalClientPoolOptions, budget: RequestBudget | undefined): SdkClientSettings {
  return {
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    restrictionParams: budget === undefined ? options.restrictionParams : { ...options.restrictionParams, ...SDK_LIMITER_OFF },
    maxResponseBytes: resolveMaxResponseBytes(options.maxResponseBytes, 'options.maxResponseBytes'),
    restRoots: resolveRestRootRules(options.restRoots),
  };
}
