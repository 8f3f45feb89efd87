// Probe gates: the first request of a key (a portal, or a portal's method) this process has not had
// a good answer for lately goes alone; the others wait for its answer. So a bucket another app filled,
// or a method the server blocked, costs one refused request per worker, not one per call.

import type { Clock } from '../clock.js';

/** How long a key counts as known-good after a good answer, ms. */
const WARM_MS = 10_000;
/** The longest a request waits for a probe to answer, ms (in case its answer never comes back to us). */
const PROBE_HOLD_MS = 5_000;

interface Gate {
  okAt: number;
  probe: Promise<void> | undefined;
  open: (() => void) | undefined;
}

/** One pool's probe gates. */
export class ProbeGates {
  readonly #clock: Clock;
  readonly #gates = new Map<string, Gate>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /**
   * Waits until a request of `key` may leave.
   * @returns `true` when this request is the probe (pass it to {@link settle}), `'aborted'` when
   * `aborted()` turned true while it waited.
   */
  async pass(key: string, aborted: () => boolean): Promise<boolean | 'aborted'> {
    for (;;) {
      let gate = this.#gates.get(key);
      if (gate === undefined) {
        gate = { okAt: Number.NEGATIVE_INFINITY, probe: undefined, open: undefined };
        this.#gates.set(key, gate);
      }
      if (gate.probe === undefined && this.#clock.now() - gate.okAt < WARM_MS) return false;
      if (gate.probe === undefined) {
        let open: () => void = () => undefined;
        gate.probe = new Promise<void>((resolve) => (open = resolve));
        gate.open = open;
        return true;
      }
      if (aborted()) return 'aborted';
      const probe = gate.probe;
      const timer = new Promise<void>((resolve) => setTimeout(resolve, PROBE_HOLD_MS).unref());
      await Promise.race([probe, timer]);
      if (gate.probe === probe) this.settle(key, true, false);
    }
  }

  /** A request of `key` was answered (`good`: the answer says the key is fine); a good answer or the probe's opens the gate. */
  settle(key: string, probe: boolean, good: boolean): void {
    const gate = this.#gates.get(key);
    if (gate === undefined) return;
    if (good) gate.okAt = this.#clock.now();
    if (probe || good) {
      const open = gate.open;
      gate.probe = undefined;
      gate.open = undefined;
      open?.();
    }
  }
}
