// The stand-in's operating-time limit: a method of a portal whose server time is spent (Bitrix24:
// 480 s per method in 10 minutes) is answered 429 OPERATION_TIME_LIMIT for every app until it resets.
// Uses the real clock, like the request bucket.

/** How a spent method is answered (see {@link FakeBitrix24.exhaustOperatingTime}). */
export interface OperatingExhaustion {
  /** How long the method stays blocked, seconds (real clock). @defaultValue 600 */
  readonly seconds?: number | undefined;
  /** Whether the 429's body carries `time.operating_reset_at`. @defaultValue true */
  readonly resetAtInAnswer?: boolean | undefined;
}

/** The blocked methods of every portal. */
export class OperatingBlocks {
  readonly #blocks = new Map<string, { until: number; resetAtInAnswer: boolean }>();

  /** Blocks `method` of `memberId` (`seconds: 0` frees it). */
  exhaust(memberId: string, method: string, options: OperatingExhaustion = {}): void {
    const seconds = options.seconds ?? 600;
    if (!(seconds >= 0) || !Number.isFinite(seconds)) throw new TypeError('seconds must be a non-negative number');
    const key = `${memberId} ${method.toLowerCase()}`;
    if (seconds === 0) this.#blocks.delete(key);
    else this.#blocks.set(key, { until: Date.now() + seconds * 1000, resetAtInAnswer: options.resetAtInAnswer ?? true });
  }

  /** The 429 body for a request of a blocked method, or `undefined` when the method is free. */
  refusal(memberId: string, method: string, version: 'v2' | 'v3'): Record<string, unknown> | undefined {
    const key = `${memberId} ${method}`;
    const block = this.#blocks.get(key);
    if (block === undefined) return undefined;
    if (Date.now() >= block.until) {
      this.#blocks.delete(key);
      return undefined;
    }
    const description = `Method is blocked due to operation time limit.`;
    const body: Record<string, unknown> =
      version === 'v3' ? { error: { code: 'OPERATION_TIME_LIMIT', message: description } } : { error: 'OPERATION_TIME_LIMIT', error_description: description };
    if (block.resetAtInAnswer) body['time'] = { operating_reset_at: Math.ceil(block.until / 1000), operating: 480 };
    return body;
  }
}
