// The request budget's step and answer, as TokenStore.acquire takes and gives them.

/**
 * One step of a shared request budget ({@link TokenStore.acquire}), in the GCRA form: the budget
 * lets `burst` requests through at once and then one every `1000 / ratePerSec` ms.
 */
export interface BudgetSpec {
  /** Sustained rate, in requests (cost units) per second; finite and > 0. */
  readonly ratePerSec: number;
  /** How many requests (cost units) may go at once after a quiet period; finite and >= 1. */
  readonly burst: number;
  /**
   * How many units this step takes. `1` for a request; `0` only asks how long a request would
   * wait now and takes nothing; fractions are allowed (operating-time accounts).
   * @defaultValue 1
   */
  readonly cost?: number | undefined;
  /**
   * When the wait would be longer than this (ms), nothing is taken and the answer has
   * `granted: false` (a caller's deadline).
   * @defaultValue no limit
   */
  readonly maxWaitMs?: number | undefined;
  /**
   * Pushes the budget back first: no unit is free before `pushBackMs` from now, for every process
   * sharing the key (after a 503 `QUERY_LIMIT_EXCEEDED`). Applied even when the step is not granted.
   * @defaultValue 0 (no push-back)
   */
  readonly pushBackMs?: number | undefined;
}

/** The answer of {@link TokenStore.acquire}. */
export interface BudgetGrant {
  /**
   * How long (ms, >= 0) the caller must wait before the request leaves. When `granted` is false,
   * how long it would have had to wait.
   */
  readonly waitMs: number;
  /** `false` only when `maxWaitMs` was passed: then nothing was taken. */
  readonly granted: boolean;
}
