// Every write the coordinator makes after a refresh was sent: the new pair, or the mark a refused
// refresh leaves (revoked, suspended; nothing at all for the app's own credentials), each through
// the conditional write and its one conflict rule.

import { OAuthCredentialsError, PortalNotInstalledError, PortalRevokedError, PortalSuspendedError, StoreError } from '../errors.js';
import { describeError } from '../logger.js';
import type { OAuthRejectedError } from '../errors.js';
import { classifyOAuthError } from '../protocol/oauth-errors.js';
import type { PortalRecord, PortalRecordPatch } from '../store/token-store.js';
import type { Backoff } from './backoff.js';
import { afterConflict, writeChain, type ConflictOutcome, type WriteIntent } from '../chains/write.js';
import type { CoordinatorCounters, CoordinatorOptions, RefreshRequest } from './types.js';

/** Attempts of a conditional write before giving up (each conflict or store failure is one). */
const WRITE_ATTEMPTS = 5;
/** First pause before retrying a failed store write, ms; doubles each time. */
const WRITE_RETRY_MS = 20;

/**
 * The `revokedReason` of a chain the OAuth host rotated while its answer was lost (a timeout): the
 * retry of the same refresh token met `invalid_grant`. No one is at fault; `reseed` recovers it.
 */
export const LOST_ROTATION = 'lost_rotation';

/** What a conditional write ended with. */
export type Written = { kind: 'written' | 'replaced' | 'revoked'; record: PortalRecord } | { kind: 'gone' };

/** The coordinator's writer: one per coordinator, sharing its options, counters and back-off. */
export class ChainWriter {
  readonly #o: CoordinatorOptions;
  readonly #counters: CoordinatorCounters;
  readonly #backoff: Backoff;
  readonly #adopted: (record: PortalRecord) => PortalRecord;

  /** Shares the coordinator's state; `adopted` counts and reports an adoption. */
  constructor(options: CoordinatorOptions, counters: CoordinatorCounters, backoff: Backoff, adopted: (record: PortalRecord) => PortalRecord) {
    this.#o = options;
    this.#counters = counters;
    this.#backoff = backoff;
    this.#adopted = adopted;
  }

  /** What a refused refresh means depends on whose fault it is (PROTOCOL.md section 3). */
  async rejected(current: PortalRecord, error: OAuthRejectedError, request: RefreshRequest): Promise<PortalRecord> {
    const kind = error.oauthError === LOST_ROTATION ? 'chain' : classifyOAuthError(error.oauthError);
    if (kind === 'chain') return this.#mark(current, error, 'revoked', request);
    if (kind === 'payment') return this.#mark(current, error, 'suspended', request);
    if (kind === 'credentials') {
      // About the app, not the portal: nothing is written, the pool pauses its refreshes.
      const now = this.#o.clock.now();
      const typed = new OAuthCredentialsError(error.oauthError, { memberId: current.memberId, cause: error });
      if (this.#backoff.credentialsRefused(typed, now)) {
        const pausedUntil = now + this.#o.backoff.credentialsMs;
        this.#o.logger.error({ oauthError: error.oauthError, pausedUntil }, 'the OAuth host refused the app credentials; pausing refreshes');
        this.#o.hooks.emit('credentials-rejected', { memberId: current.memberId, chain: current.chain, oauthError: error.oauthError, pausedUntil });
      }
      throw typed;
    }
    throw error;
  }

  /** Marks a chain revoked or suspended, unless a live chain was stored meanwhile. */
  async #mark(current: PortalRecord, error: OAuthRejectedError, state: 'revoked' | 'suspended', request: RefreshRequest): Promise<PortalRecord> {
    const { memberId, chain } = current;
    const now = this.#o.clock.now();
    const patch: PortalRecordPatch = { state, revokedAt: now, revokedReason: error.oauthError, updatedAt: now };
    // A user's dead chain is removed in effect: its tokens go, the record stays as the fence that
    // keeps versions moving (a user chain comes back through the app page or the code flow).
    const write = chain !== 'portal' && state === 'revoked' ? { ...patch, accessToken: '', refreshToken: '' } : patch;
    const outcome = await this.write(current, write, 'mark', `marking a chain ${state}`);
    if (outcome.kind === 'replaced') return this.#adopted(outcome.record);
    const retryAt = now + this.#o.suspendRetryMs;
    if (outcome.kind === 'written' && state === 'revoked') {
      this.#counters.revocations++;
      // Confirming an uninstall expects exactly this answer: no alarm then.
      const level = request.reason === 'confirm' ? 'info' : 'error';
      this.#o.logger[level]({ memberId, chain, reason: error.oauthError }, 'chain revoked by the OAuth server');
      this.#o.hooks.emit('revoked', { memberId, chain, reason: error.oauthError });
    } else if (outcome.kind === 'written') {
      this.#o.logger.warn({ memberId, chain, reason: error.oauthError, retryAt }, 'chain suspended by the OAuth server');
      this.#o.hooks.emit('suspended', { memberId, chain, reason: error.oauthError, retryAt });
    }
    this.#o.hooks.drop(memberId, chain, outcome.kind === 'gone' ? 'lifecycle' : 'revoked');
    if (outcome.kind === 'gone') throw new PortalNotInstalledError(memberId, { cause: error });
    const stored = outcome.record;
    if (stored.state === 'suspended') throw new PortalSuspendedError(memberId, (stored.revokedAt ?? now) + this.#o.suspendRetryMs, { cause: error });
    throw new PortalRevokedError(memberId, stored.revokedReason ?? error.oauthError, { cause: error });
  }

  /**
   * The conditional write with the one conflict rule (see `afterConflict`): a change that left the
   * chain alone is merged and the write applied again; a replaced, revoked or deleted chain ends
   * it. A store failure is retried with back-off before it is thrown: after a refresh the new pair
   * exists only here.
   */
  async write(base: PortalRecord, patch: PortalRecordPatch, intent: WriteIntent, what: string): Promise<Written> {
    const { memberId, chain } = base;
    const outcome = await writeChain<ConflictOutcome>({
      store: this.#o.store,
      key: { memberId, chain },
      base,
      patch: () => patch,
      onConflict: (current) => {
        const classified = afterConflict(base, current, intent);
        return classified.kind === 'retry' ? { retry: classified.record } : { stop: classified };
      },
      onStoreError: async (error, attempt, last) => {
        this.#o.logger.error({ memberId, chain, attempt, err: describeError(error) }, `the token store failed ${what}`);
        if (last) throw error instanceof StoreError ? error : new StoreError(`The token store failed ${what}`, { cause: error, memberId });
        await this.#o.clock.sleep(WRITE_RETRY_MS * 2 ** (attempt - 1));
        return undefined;
      },
      attempts: WRITE_ATTEMPTS,
    });
    if ('written' in outcome) return { kind: 'written', record: outcome.written };
    if ('stopped' in outcome && outcome.stopped.kind !== 'retry') return outcome.stopped;
    throw new StoreError(`The record kept changing while ${what}`, { memberId });
  }
}
