// Learns each portal's real headroom under Bitrix24's request limit instead of keeping a fixed
// margin: starts at the documented rate and burst (share 1), gives way at once when the portal
// answers 503 / QUERY_LIMIT_EXCEEDED (another app, or a bucket the numbers did not describe), and
// recovers slowly while answers are good. The pool's default (`budgetHeadroom` not a number):
// `RequestBudget.specFor` asks for `share` of each portal's limits, `pushBack` calls `limited`.

import type { Clock } from '../clock.js';
import { InvalidArgumentError } from '../errors.js';

/**
 * How the learned share of a portal's documented limits moves (`budgetHeadroom` given as an object).
 * @inline
 */
export interface HeadroomSettings {
  /** The share used with no 503 seen, in (0, 1]. @defaultValue 1 (the documented rate and burst) */
  readonly max?: number | undefined;
  /** The share it never goes below, in (0, max]. @defaultValue 0.25 */
  readonly min?: number | undefined;
  /** What a 503 multiplies the share by, in (0, 1). @defaultValue 0.7 */
  readonly decrease?: number | undefined;
  /** How much share comes back per second without a 503. @defaultValue 0.005 (from 0.7 to 1 in a minute) */
  readonly recoverPerSec?: number | undefined;
  /**
   * 503s within this many ms of the last decrease count as the same event (a full bucket refuses
   * every request in flight at once, and every worker hears it). @defaultValue 1000
   */
  readonly settleMs?: number | undefined;
}

interface Learned {
  /** The share right after the last decrease. */
  readonly share: number;
  /** When it was decreased, by the clock. */
  readonly at: number;
}

/**
 * The learned headroom of every portal this process calls. Memory only, per process: what it
 * learns is a rate, and the shared budget in the store already makes every worker hold back at a
 * 503 (`RequestBudget.pushBack`); this decides how much of the documented limits the budget then
 * asks for.
 *
 * @example
 * ```ts
 * const headroom = new HeadroomLearner(clock);
 * const spec = { ratePerSec: 2 * headroom.share(memberId), burst: Math.floor(50 * headroom.share(memberId)) };
 * // on a 503 or QUERY_LIMIT_EXCEEDED from that portal:
 * headroom.limited(memberId);
 * ```
 */
export class HeadroomLearner {
  readonly #clock: Clock;
  readonly #max: number;
  readonly #min: number;
  readonly #decrease: number;
  readonly #recoverPerMs: number;
  readonly #settleMs: number;
  readonly #learned = new Map<string, Learned>();

  /** @throws InvalidArgumentError for settings outside their ranges. */
  constructor(clock: Clock, settings: HeadroomSettings = {}) {
    this.#clock = clock;
    this.#max = inRange('max', settings.max ?? 1, 0, 1);
    this.#min = inRange('min', settings.min ?? 0.25, 0, this.#max);
    this.#decrease = inRange('decrease', settings.decrease ?? 0.7, 0, 1, true);
    const recover = settings.recoverPerSec ?? 0.005;
    if (!(recover >= 0 && Number.isFinite(recover))) throw new InvalidArgumentError('recoverPerSec', 'must be a finite number of at least 0');
    this.#recoverPerMs = recover / 1000;
    const settle = settings.settleMs ?? 1000;
    if (!(settle >= 0 && Number.isFinite(settle))) throw new InvalidArgumentError('settleMs', 'must be a finite number of at least 0');
    this.#settleMs = settle;
  }

  /** The share of the portal's documented rate and burst to use now, in [min, max]. */
  share(key: string): number {
    const learned = this.#learned.get(key);
    if (learned === undefined) return this.#max;
    const share = Math.min(this.#max, learned.share + (this.#clock.now() - learned.at) * this.#recoverPerMs);
    if (share >= this.#max) this.#learned.delete(key); // fully recovered: forget the portal
    return share;
  }

  /** The portal answered 503 / `QUERY_LIMIT_EXCEEDED`: gives way (once per `settleMs`). @returns the share now. */
  limited(key: string): number {
    const now = this.#clock.now();
    const learned = this.#learned.get(key);
    if (learned !== undefined && now - learned.at < this.#settleMs) return this.share(key);
    const share = Math.max(this.#min, this.share(key) * this.#decrease);
    this.#learned.set(key, { share, at: now });
    return share;
  }
}

function inRange(name: string, value: number, above: number, atMost: number, belowMax = false): number {
  if (!(value > above && (belowMax ? value < atMost : value <= atMost))) {
    throw new InvalidArgumentError(name, `must be in (${above}, ${atMost}${belowMax ? ')' : ']'}`);
  }
  return value;
}
