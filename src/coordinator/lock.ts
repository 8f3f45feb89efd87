// Step 3 of the coordinator: the store's per-chain lock, waited for on the coordinator's clock, and
// its lease kept alive while the holder works.

import { LockTimeoutError, PortalTokensError, StoreError } from '../errors.js';
import { describeError } from '../logger.js';
import type { LockWaitEvent } from './events.js';
import type { PortalRecord, StoreLease, TokenStore } from '../store/token-store.js';
import type { CoordinatorCounters, CoordinatorOptions } from './types.js';

/** Lock polling: first and longest pause between tries, ms. */
const LOCK_POLL_MIN_MS = 10;
const LOCK_POLL_MAX_MS = 250;

/**
 * A held lease (none when the store has no lock), or a pair another worker stored meanwhile. `read`
 * is present when the store answered the record with the lease (`tryLockAndGet`): step 4's re-read,
 * already made.
 */
export type Lock =
  | { readonly lease: StoreLease | undefined; readonly read?: { readonly record: PortalRecord | undefined } }
  | { readonly adopt: PortalRecord };

/** How step 3 learns whether the chain moved on while it waited. */
export interface LockJudge {
  /** Reads the chain (a store round trip). */
  read(): Promise<PortalRecord | undefined>;
  /**
   * The record to adopt instead of refreshing, or `undefined` to go on; throws the typed error of a
   * chain that is missing, revoked or suspended.
   */
  movedOn(stored: PortalRecord | undefined): PortalRecord | undefined;
}

/** The store's `tryLockAndGet`, when it has one and declares its lock. */
export function lockAndReadOf(store: TokenStore): TokenStore['tryLockAndGet'] {
  return store.capabilities.lock && store.tryLock !== undefined ? store.tryLockAndGet?.bind(store) : undefined;
}

/**
 * Step 3: takes the chain's lock, waiting while another worker holds it; a pair that worker stored
 * meanwhile is adopted at once. Each wait ends when the store reports a write of the chain (the
 * change feed, through `waitForChange`) or after a pause growing from 10 to 250 ms, whichever is
 * first. The wait is armed before each try, so a write landing while the try is on its way is not
 * missed. Time waited counts by the clock and by the pauses taken, so a clock that stands still
 * still times out.
 *
 * A store with `tryLockAndGet` answers the record with each try: steps 2 to 4 then cost one round
 * trip while the lock is free, and one per try while another worker holds it (instead of a try and
 * a read).
 */
export async function takeLock(o: CoordinatorOptions, counters: CoordinatorCounters, known: PortalRecord, judge: LockJudge): Promise<Lock> {
  const store = o.store;
  const tryLock = store.tryLock?.bind(store);
  if (tryLock === undefined || !store.capabilities.lock) return { lease: undefined };
  const lockAndRead = lockAndReadOf(store);
  const { memberId, chain } = known;
  const key = { memberId, chain };
  const wait = o.waitForChange ?? ((_key, ms, signal) => o.clock.sleep(ms, signal));
  const started = o.clock.now();
  let paused = 0;
  let delay = LOCK_POLL_MIN_MS;
  const waitEnded = (outcome: LockWaitEvent['outcome']): void => {
    if (paused > 0) o.hooks.emit('lock-wait', { memberId, chain, outcome, waitedMs: Math.max(o.clock.now() - started, paused) });
  };
  const timeout = (): void => {
    const waited = Math.max(o.clock.now() - started, paused);
    if (waited > o.lockWaitMs) {
      waitEnded('timeout');
      throw new LockTimeoutError(memberId, waited);
    }
  };
  for (;;) {
    const pause = delay + Math.floor(o.random() * delay);
    const armed = new AbortController();
    const woken = wait(key, pause, armed.signal);
    let lease: StoreLease | undefined;
    let read: { readonly record: PortalRecord | undefined } | undefined;
    try {
      if (lockAndRead === undefined) {
        lease = await tryLock(key, o.lockTtlMs);
      } else {
        const answer = await lockAndRead(key, o.lockTtlMs);
        lease = answer.lease;
        read = { record: answer.record };
      }
    } catch (error) {
      disarm(armed, woken);
      // A custom store's raw error reaches the caller typed, the original kept as the cause.
      throw error instanceof PortalTokensError ? error : new StoreError('The token store failed to take the refresh lock', { cause: error, memberId });
    }
    if (lease !== undefined) {
      disarm(armed, woken);
      waitEnded('acquired');
      return read === undefined ? { lease } : { lease, read };
    }
    if (read !== undefined) {
      // The record came with the refused try: adopt what the holder stored without waiting again.
      let stored: PortalRecord | undefined;
      try {
        stored = judge.movedOn(read.record);
        if (stored === undefined) timeout();
      } catch (error) {
        disarm(armed, woken);
        throw error;
      }
      if (stored !== undefined) {
        disarm(armed, woken);
        waitEnded('adopted');
        return { adopt: stored };
      }
    }
    if (paused === 0) counters.lockWaits++;
    const from = o.clock.now();
    // A wait a write ended counts what it took; one the pause ended counts the pause (a clock that
    // stands still still times out).
    paused += (await woken) === true ? Math.max(1, o.clock.now() - from) : pause;
    delay = Math.min(delay * 2, LOCK_POLL_MAX_MS);
    if (read !== undefined) continue; // the next try reads too
    const stored = judge.movedOn(await judge.read());
    if (stored !== undefined) {
      waitEnded('adopted');
      return { adopt: stored };
    }
    timeout();
  }
}

/** Ends a wait that is not needed after all (the lock was taken, or the try failed). */
function disarm(armed: AbortController, woken: Promise<boolean | void>): void {
  armed.abort();
  woken.catch(() => undefined);
}

/**
 * Keeps the lease while this holder works: renews it every third of its lifetime, so a slow
 * OAuth answer or a paused process does not hand the chain to another worker mid-refresh.
 * (When a pause outlasts the lease anyway, the conditional write is the fence.)
 */
export function keepLease(o: CoordinatorOptions, lease: StoreLease | undefined, known: PortalRecord): AbortController {
  const stop = new AbortController();
  const renew = lease?.renew?.bind(lease);
  if (renew === undefined) return stop;
  const every = Math.max(1, Math.floor(o.lockTtlMs / 3));
  void (async () => {
    while (!stop.signal.aborted) {
      try {
        await o.clock.sleep(every, stop.signal);
        if (!(await renew(o.lockTtlMs))) return;
      } catch (error) {
        if (!stop.signal.aborted) {
          o.logger.warn({ memberId: known.memberId, chain: known.chain, err: describeError(error) }, 'renewing the refresh lock failed');
        }
        return;
      }
    }
  })();
  return stop;
}
