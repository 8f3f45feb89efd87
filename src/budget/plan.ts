// A portal's plan, as Bitrix24 reports it in `app.info` (`LICENSE`, `LICENSE_TYPE`, `LICENSE_FAMILY`),
// and the request limits that go with it. The SDK reads the same field: its helper's `loadData()`
// asks `app.info` and `LicenseManager` passes `LICENSE` to `ParamsFactory.fromTariffPlan()`.

/** A portal's REST limits: Bitrix24's leaky bucket drains `ratePerSec` and blocks past `burst`. */
export interface RequestBudgetLimits {
  /** Requests per second the portal's bucket drains (Bitrix24: 2; Enterprise: 5). */
  readonly ratePerSec: number;
  /** Requests the bucket holds before it blocks (Bitrix24: 50; Enterprise: 250). */
  readonly burst: number;
}

/** Bitrix24's documented limits per plan (cloud portals), for `requestBudget`. */
export const BITRIX24_PLAN_LIMITS: Readonly<Record<'standard' | 'enterprise', RequestBudgetLimits>> = Object.freeze({
  /** Every plan but Enterprise. */
  standard: { ratePerSec: 2, burst: 50 },
  /** Enterprise plans. */
  enterprise: { ratePerSec: 5, burst: 250 },
});

const text = (value: unknown): string => (typeof value === 'string' ? value.trim().toLowerCase() : '');

/**
 * The limits of the plan an `app.info` result names, or `undefined` when it names none. Enterprise
 * is `LICENSE_FAMILY: 'ent'`, or a `LICENSE_TYPE` / `LICENSE` (region prefix stripped) starting with
 * `ent` (`ent250`, `ru_ent10000`) or equal to `enterprise`; any other named plan is the standard one.
 */
export function planLimitsOf(result: unknown): RequestBudgetLimits | undefined {
  if (result === null || typeof result !== 'object') return undefined;
  const info = result as Record<string, unknown>;
  const family = text(info['LICENSE_FAMILY']);
  const type = text(info['LICENSE_TYPE']);
  const license = text(info['LICENSE']).replace(/^[a-z]{2}_/, '');
  if (family === '' && type === '' && license === '') return undefined;
  const enterprise = family === 'ent' || [type, license].some((plan) => plan === 'enterprise' || /^ent\d*$/.test(plan));
  return enterprise ? BITRIX24_PLAN_LIMITS.enterprise : BITRIX24_PLAN_LIMITS.standard;
}

/**
 * The plan an answer reveals: an `app.info` answer's `result`, or any `app.info` result inside a
 * `batch` answer (the SDK's helper asks it that way).
 */
export function planInAnswer(method: string, data: unknown): RequestBudgetLimits | undefined {
  if (data === null || typeof data !== 'object') return undefined;
  const result = (data as { result?: unknown }).result;
  if (method === 'app.info') return planLimitsOf(result);
  if (method !== 'batch' || result === null || typeof result !== 'object') return undefined;
  const inner = (result as { result?: unknown }).result;
  if (inner === null || typeof inner !== 'object') return undefined;
  for (const value of Object.values(inner)) {
    const limits = planLimitsOf(value);
    if (limits !== undefined) return limits;
  }
  return undefined;
}
