// The OAuth host's clock, learned from its own answers: every token answer carries `expires`
// (absolute) and `expires_in`, so their difference is the host's time at issue (docs/protocol.md,
// "The OAuth host's clock"). Freshness is judged by it, so a machine clock that is off by hours
// neither refreshes on every call nor sends dead tokens.

import type { PortalRecord } from '../store/token-store.js';

/** Bitrix24's access-token lifetime, seconds: what a stored pair's issue time is estimated with. */
const ACCESS_TOKEN_LIFETIME_SEC = 3600;
/**
 * Below this, a difference between a stored pair's estimated issue time and the time it was
 * stored is taken for a delivery delay, not a clock error, ms.
 */
const SKEW_THRESHOLD_MS = 10 * 60_000;
/** Beyond this, an estimate from a stored pair is taken for a hand-edited record, not a clock error, ms. */
const SKEW_LIMIT_MS = 26 * 3_600_000;

/** The offset of the OAuth host's clock from this machine's. */
export class HostClock {
  #offsetMs = 0;
  #learned = false;

  /** The host's time now, unix ms, by the machine's `nowMs`. */
  now(nowMs: number): number {
    return nowMs + this.#offsetMs;
  }

  /** The offset, seconds (host minus machine), to translate host times for the SDK. */
  get offsetSec(): number {
    return Math.round(this.#offsetMs / 1000);
  }

  /** Learns the offset from a token answer received at `receivedAtMs` (machine time). */
  learnFromAnswer(expires: number, expiresIn: number, receivedAtMs: number): void {
    if (!Number.isFinite(expires) || !Number.isFinite(expiresIn) || expiresIn <= 0) return;
    this.#offsetMs = (expires - expiresIn) * 1000 - receivedAtMs;
    if (Math.abs(this.#offsetMs) < SKEW_THRESHOLD_MS) this.#offsetMs = 0;
    this.#learned = true;
  }

  /**
   * Until an answer was seen, estimates the offset from a stored pair: issued an access-token
   * lifetime before it expires, stored when its chain last changed. Small differences (delivery
   * delays) count as none, and differences beyond a day (a hand-edited record) are ignored.
   */
  learnFromRecord(record: PortalRecord): void {
    if (this.#learned) return;
    const estimate = (record.expires - ACCESS_TOKEN_LIFETIME_SEC) * 1000 - record.chainUpdatedAt;
    if (Math.abs(estimate) >= SKEW_THRESHOLD_MS && Math.abs(estimate) <= SKEW_LIMIT_MS) {
      this.#offsetMs = estimate;
      this.#learned = true;
    }
  }
}
