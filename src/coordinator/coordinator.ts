// The refresh coordinator: one refresh per expiry of each chain, across the v2/v3 clients of this
// process and across every process sharing the store, the new pair persisted before anyone uses it.
// The seven steps (README "Architecture"): 1 single flight, 2 re-read and adopt, 3 the store's lock
// (waiting, re-reading), 4 re-read under the lock, 5 refresh, 6 conditional write, 7 release.

import {
  OAuthCredentialsError,
  OAuthRejectedError,
  OAuthUnavailableError,
  PoolClosedError,
  PortalNotInstalledError,
  PortalRevokedError,
  PortalSuspendedError,
  PortalTokensError,
  StoreError,
} from '../errors.js';
import { describeError } from '../logger.js';
import type { TokenResponse } from '../oauth/oauth-client.js';
import type { ChainId, PortalRecord, PortalRecordPatch } from '../store/token-store.js';
import type { RefreshOutcome } from './events.js';
import { Backoff } from './backoff.js';
import { RequestTurns, waitForFlight, type Flight } from './flights.js';
import { isUsable, refreshWindow } from './freshness.js';
import { HostClock } from './host-clock.js';
import { keepLease, lockAndReadOf, takeLock } from './lock.js';
import { chainKeyOf, pairPatch } from './records.js';
import { ChainWriter, LOST_ROTATION } from './writes.js';

import type { ChainView, CoordinatorCounters, CoordinatorOptions, RefreshRequest } from './types.js';

export { chainKeyOf, isHttpUrl, pairPatch } from './records.js';
export { LOST_ROTATION } from './writes.js';

/** How many times a caller joins a flight before it settles for what it has. */
const FLIGHT_ROUNDS = 3;

/**
 * Coordinates every refresh of every chain this process holds. Depends only on a store, a refresh
 * function, a clock and a logger, so each branch can be driven by a test without the SDK.
 */
export class RefreshCoordinator {
  /** Counts since construction. */
  readonly counters: CoordinatorCounters = { refreshes: 0, adoptions: 0, refreshFailures: 0, revocations: 0, lockWaits: 0 };
  /** The OAuth host's clock, learned from its answers. */
  readonly hostClock = new HostClock();
  readonly #o: CoordinatorOptions;
  readonly #flights = new Map<string, Flight>();
  readonly #backoff: Backoff;
  readonly #writer: ChainWriter;
  /** Refresh tokens whose refresh got no answer, by chain: a later `invalid_grant` means a lost rotation. */
  readonly #abandoned = new Map<string, string>();
  /** Refresh requests in flight to OAuth hosts, and those waiting for a turn. */
  readonly #turns: RequestTurns;
  /** Lock releases still on their way to the store (step 7 does not hold the callers up). */
  readonly #releases = new Set<Promise<void>>();

  /** Creates a coordinator; it holds no timers and no connections. */
  constructor(options: CoordinatorOptions) {
    this.#o = options;
    this.#backoff = new Backoff(options.backoff, options.random);
    this.#writer = new ChainWriter(options, this.counters, this.#backoff, (record) => this.#adopted(record));
    this.#turns = new RequestTurns(options.maxConcurrentRefreshes, () => options.clock.now());
  }

  /**
   * The refresh of this chain running in this process right now, if any, as a caller waits for it
   * (see `answerWaitMs`).
   */
  flight(memberId: string, chain: ChainId): Promise<PortalRecord> | undefined {
    const flight = this.#flights.get(chainKeyOf(memberId, chain));
    return flight === undefined ? undefined : waitForFlight(flight, memberId, this.#o.clock, this.#o.answerWaitMs);
  }

  /**
   * Resolves one turn of the event loop after this process's refresh of the chain settles (by then
   * its callers have adopted its pair), or `undefined` when none runs. The change feed's follower
   * waits for it instead of reading the chain: a write this process is making comes back on the
   * feed while its flight ends, and reading it again would cost one more store round trip per
   * refresh.
   */
  afterFlight(memberId: string, chain: ChainId): Promise<void> | undefined {
    const flight = this.#flights.get(chainKeyOf(memberId, chain));
    if (flight === undefined) return undefined;
    const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    return flight.work.then(settled, settled);
  }

  /**
   * Stops the coordinator: refreshes not yet sent are refused with {@link PoolClosedError}; those
   * already sent run to the end, so an answer that spent a refresh token is still stored. Resolves
   * when no refresh of this coordinator is left and every lock it took is released.
   */
  async close(): Promise<void> {
    this.#turns.close();
    await Promise.allSettled([...this.#flights.values()].map((flight) => flight.work));
    await Promise.allSettled([...this.#releases]);
  }

  /** The refresh-ahead window of a record for a cached holder (with this holder's jitter). */
  windowFor(record: PortalRecord): number {
    // A holder is handed its expiry with this window: learn the host's clock from the record first.
    this.hostClock.learnFromRecord(record);
    return refreshWindow(record, this.#o, this.#o.random());
  }

  /** The OAuth host's time now, unix ms: freshness is judged by it. */
  hostNow(): number {
    return this.hostClock.now(this.#o.clock.now());
  }

  /**
   * Step 1: gives `view` a pair it can use, joining this process's flight for the chain or
   * starting one. A caller joining a flight started for another reason checks the outcome
   * against its own need.
   */
  async ensureFresh(view: ChainView, request: RefreshRequest): Promise<PortalRecord> {
    this.hostClock.learnFromRecord(view.record);
    for (let round = 0; round < FLIGHT_ROUNDS; round++) {
      if (isUsable(view.record, view.windowSec, this.hostNow(), request.rejectedToken)) return view.record;
      const record = await this.#join(view.record, request);
      view.adopt(record);
      if (record.accessToken !== request.rejectedToken) return record;
    }
    return view.record;
  }

  /**
   * Keeps an idle chain alive (the sweep): refreshes it unless another worker did since `record`
   * was read. Waits for the answer as a caller does (`answerWaitMs`): a refresh with no answer by
   * then counts as `failed` and goes on in the background (its pair is stored when the answer
   * comes), so a hanging OAuth host does not stall the sweep; while that host holds all its turns
   * past `answerWaitMs`, no keep-alive for it is started (`failed` at once). Never throws.
   */
  async keepAlive(record: PortalRecord, idleMs: number): Promise<{ outcome: 'refreshed' | 'revoked' | 'failed'; record?: PortalRecord }> {
    const wait = this.#o.answerWaitMs;
    if (wait !== undefined && !this.#flights.has(chainKeyOf(record.memberId, record.chain)) && this.#turns.stalled(record.serverEndpoint, wait)) {
      this.#o.logger.debug({ memberId: record.memberId, chain: record.chain }, 'keep-alive skipped: its OAuth host is not answering');
      return { outcome: 'failed' };
    }
    try {
      const fresh = await waitForFlight(this.#flightOf(record, { reason: 'keep-alive' }), record.memberId, this.#o.clock, wait);
      return { outcome: this.#o.clock.now() - fresh.chainUpdatedAt <= idleMs ? 'refreshed' : 'failed', record: fresh };
    } catch (error) {
      return { outcome: error instanceof PortalRevokedError ? 'revoked' : 'failed' };
    }
  }

  /**
   * Tries a revoked or suspended chain's stored refresh token once (an operator's call): a fresh
   * pair makes it active again; a refusal leaves it as it was (with the new reason).
   * @returns the chain's record afterwards.
   */
  async reactivate(memberId: string, chain: ChainId): Promise<PortalRecord> {
    const record = await this.read(memberId, chain);
    if (record === undefined) throw new PortalNotInstalledError(memberId);
    if (record.state === 'active') return record;
    this.#backoff.succeeded(chainKeyOf(memberId, chain));
    return this.#join(record, { reason: 'reactivate' });
  }

  /**
   * Stores a chain's new REST root (a renamed portal) with the conditional write, under the one
   * conflict rule. Returns the record stored now, or `undefined` when the chain is gone.
   */
  async moveEndpoint(record: PortalRecord, clientEndpoint: string, domain: string): Promise<PortalRecord | undefined> {
    const patch: PortalRecordPatch = { clientEndpoint, domain, updatedAt: this.#o.clock.now() };
    const outcome = await this.#writer.write(record, patch, 'move', 'moving a portal to its new address');
    if (outcome.kind === 'written') {
      this.#o.logger.info({ memberId: record.memberId, chain: record.chain, domain }, 'portal moved to a new address; stored it');
      this.#o.hooks.drop(record.memberId, record.chain, 'endpoint-changed');
      return outcome.record;
    }
    return outcome.kind === 'gone' ? undefined : outcome.record;
  }

  /** Reads a chain; store failures become a {@link StoreError}. */
  async read(memberId: string, chain: ChainId): Promise<PortalRecord | undefined> {
    try {
      return await this.#o.store.get({ memberId, chain });
    } catch (error) {
      throw error instanceof PortalTokensError ? error : new StoreError('The token store failed to read', { cause: error, memberId });
    }
  }

  /**
   * Reads a chain that must be usable; a missing, revoked or (until its retry time) suspended one
   * is dropped and thrown as typed.
   */
  async readActive(memberId: string, chain: ChainId): Promise<PortalRecord> {
    return this.#active(memberId, chain, await this.read(memberId, chain));
  }

  /** {@link readActive}'s judgement of a record already read. */
  #active(memberId: string, chain: ChainId, record: PortalRecord | undefined): PortalRecord {
    if (record === undefined) {
      this.#o.hooks.drop(memberId, chain, 'lifecycle');
      throw new PortalNotInstalledError(memberId);
    }
    if (record.state === 'revoked') {
      this.#o.hooks.drop(memberId, chain, 'revoked');
      throw new PortalRevokedError(memberId, record.revokedReason ?? undefined);
    }
    if (record.state === 'suspended') {
      const retryAt = (record.revokedAt ?? 0) + this.#o.suspendRetryMs;
      if (this.#o.clock.now() < retryAt) {
        this.#o.hooks.drop(memberId, chain, 'revoked');
        throw new PortalSuspendedError(memberId, retryAt);
      }
    }
    return record;
  }

  /** Counts and reports a pair a holder took from the store's change feed. */
  noteAdopted(record: PortalRecord): void {
    this.#adopted(record);
  }

  /** Step 1 for a caller: joins (or starts) the chain's flight and waits for it as a caller does. */
  #join(known: PortalRecord, request: RefreshRequest): Promise<PortalRecord> {
    return waitForFlight(this.#flightOf(known, request), known.memberId, this.#o.clock, this.#o.answerWaitMs);
  }

  #flightOf(known: PortalRecord, request: RefreshRequest): Flight {
    const key = chainKeyOf(known.memberId, known.chain);
    let flight = this.#flights.get(key);
    if (flight === undefined) {
      if (this.#turns.closed) throw new PoolClosedError();
      this.#backoff.check(key, known.memberId, this.#o.clock.now());
      let markSent!: () => void;
      const sent = new Promise<void>((resolve) => (markSent = resolve));
      const work = this.#refresh(known, request, markSent).finally(() => this.#flights.delete(key));
      flight = { work, sent };
      this.#flights.set(key, flight);
    }
    return flight;
  }

  /** Judges a record read for a request: an operator's reactivation may take a chain that is not active. */
  #checkFor(known: PortalRecord, request: RefreshRequest, record: PortalRecord | undefined): PortalRecord {
    if (request.reason !== 'reactivate') return this.#active(known.memberId, known.chain, record);
    if (record === undefined) throw new PortalNotInstalledError(known.memberId);
    return record;
  }

  /** Steps 2-7 for one chain; runs at most once at a time per chain in this process. */
  async #refresh(known: PortalRecord, request: RefreshRequest, sent: () => void): Promise<PortalRecord> {
    const { memberId, chain } = known;
    const key = chainKeyOf(memberId, chain);
    try {
      // Step 2: another worker (or an install) may already have moved the chain on. A store that
      // answers the record with the lock (tryLockAndGet) makes this read with step 3's try instead.
      if (lockAndReadOf(this.#o.store) === undefined) {
        const stored = this.#checkFor(known, request, await this.read(memberId, chain));
        if (this.#movedOn(stored, known, request)) return this.#adopted(stored);
      }

      // Step 3: the store's lock, waiting while another worker holds it.
      const lock = await takeLock(this.#o, this.counters, known, {
        read: () => this.read(memberId, chain),
        movedOn: (record) => {
          const stored = this.#checkFor(known, request, record);
          return this.#movedOn(stored, known, request) ? stored : undefined;
        },
      });
      if ('adopt' in lock) return this.#adopted(lock.adopt);
      const renewing = keepLease(this.#o, lock.lease, known);
      try {
        // Step 4: re-read under the lock (made with the lock when the store answered the record).
        const current = this.#checkFor(known, request, lock.read === undefined ? await this.read(memberId, chain) : lock.read.record);
        if (this.#movedOn(current, known, request)) return this.#adopted(current);
        // Steps 5 and 6.
        const record = await this.#refreshAndPersist(current, request, sent);
        this.#backoff.succeeded(key);
        return record;
      } finally {
        renewing.abort();
        // Step 7, off the callers' path: the pair is written, so they go with it now instead of
        // waiting one more store round trip (close() waits for the release).
        const release = lock.lease?.release().catch((error: unknown) => {
          this.#o.logger.warn({ memberId, chain, err: describeError(error) }, 'releasing the refresh lock failed');
        });
        if (release !== undefined) {
          this.#releases.add(release);
          void release.finally(() => this.#releases.delete(release));
        }
      }
    } catch (error) {
      if (error instanceof OAuthUnavailableError) this.#backoff.transientFailure(key, this.#o.clock.now(), error);
      const expected =
        error instanceof PortalRevokedError ||
        error instanceof PortalNotInstalledError ||
        error instanceof PortalSuspendedError ||
        error instanceof PoolClosedError;
      if (!expected) {
        this.counters.refreshFailures++;
        const code = error instanceof PortalTokensError ? error.code : 'UNKNOWN';
        this.#o.logger.warn({ memberId, chain, code, err: describeError(error) }, 'refresh failed; stored chain unchanged');
        this.#o.hooks.emit('refresh-failed', { memberId, chain, code });
      }
      throw error;
    }
  }

  /** Whether the stored record already holds a pair this request can use without refreshing. */
  #movedOn(stored: PortalRecord, known: PortalRecord, request: RefreshRequest): boolean {
    if (request.reason === 'reactivate') return stored.state === 'active';
    if (request.reason === 'keep-alive') return stored.chainUpdatedAt > known.chainUpdatedAt;
    return (
      stored.accessToken !== known.accessToken &&
      isUsable(stored, refreshWindow(stored, this.#o), this.hostNow(), request.rejectedToken)
    );
  }

  #adopted(record: PortalRecord): PortalRecord {
    this.counters.adoptions++;
    this.#o.logger.debug({ memberId: record.memberId, chain: record.chain, version: record.version }, 'adopted a pair from the store');
    this.#o.hooks.emit('adopted', { memberId: record.memberId, chain: record.chain, version: record.version });
    return record;
  }

  /** Steps 5 and 6, reported as one `refresh-attempt` event with its outcome and duration. */
  async #refreshAndPersist(current: PortalRecord, request: RefreshRequest, sent: () => void): Promise<PortalRecord> {
    const startedAt = this.#o.clock.now();
    const report = (outcome: RefreshOutcome): void => {
      const durationMs = Math.max(0, this.#o.clock.now() - startedAt);
      this.#o.hooks.emit('refresh-attempt', { memberId: current.memberId, chain: current.chain, reason: request.reason, outcome, startedAt, durationMs });
    };
    try {
      const record = await this.#exchange(current, request, sent);
      report('refreshed');
      return record;
    } catch (error) {
      report(
        error instanceof PortalRevokedError ? 'revoked'
        : error instanceof PortalSuspendedError ? 'suspended'
        : error instanceof OAuthCredentialsError ? 'credentials-rejected'
        : error instanceof OAuthUnavailableError ? 'unavailable'
        : 'failed',
      );
      throw error;
    }
  }

  /** Steps 5 and 6: refreshes at the chain's own OAuth host and persists the pair before anyone sees it. */
  async #exchange(current: PortalRecord, request: RefreshRequest, sent: () => void): Promise<PortalRecord> {
    const { memberId, chain } = current;
    let tokens: TokenResponse;
    this.counters.refreshes++;
    const key = chainKeyOf(memberId, chain);
    try {
      // A caller's wait for the answer starts here, while the request may still wait for its turn.
      sent();
      tokens = await this.#turns.run(() => this.#o.refresh(current), { host: current.serverEndpoint, portal: memberId });
      this.#abandoned.delete(key);
    } catch (error) {
      if (error instanceof OAuthUnavailableError && error.status === 0) {
        // No answer (a timeout, a dropped connection): the host may have rotated the chain anyway.
        this.#abandoned.set(key, current.refreshToken);
      }
      if (error instanceof OAuthRejectedError) {
        const lost = error.oauthError === 'invalid_grant' && this.#abandoned.get(key) === current.refreshToken;
        this.#abandoned.delete(key);
        if (lost) {
          this.#o.logger.error(
            { memberId, chain },
            "the OAuth host rotated this chain but its answer never arrived; an administrator's app-page visit (pool.reseed) or a reinstall brings it back",
          );
          return this.#writer.rejected(current, new OAuthRejectedError(LOST_ROTATION, error.status, { memberId, cause: error }), request);
        }
        return this.#writer.rejected(current, error, request);
      }
      throw error;
    }
    this.hostClock.learnFromAnswer(tokens.expires, tokens.expiresIn, this.#o.clock.now());
    const outcome = await this.#writer.write(current, pairPatch(current, tokens, this.#o.clock.now()), 'pair', 'saving a refreshed pair');
    if (outcome.kind === 'gone') throw new PortalNotInstalledError(memberId);
    if (outcome.kind === 'revoked') throw new PortalRevokedError(memberId, outcome.record.revokedReason ?? undefined);
    if (outcome.kind === 'replaced') {
      // Ours branched from a chain that is no longer stored: the stored one wins.
      this.#o.logger.warn({ memberId, chain }, 'the chain was replaced while refreshing; adopting the stored one');
      return outcome.record;
    }
    const record = outcome.record;
    this.#o.logger.info({ memberId, chain, version: record.version, reason: request.reason }, 'refreshed the token pair');
    this.#o.hooks.emit('refreshed', { memberId, chain, version: record.version, expires: record.expires, reason: request.reason });
    if (record.clientEndpoint !== current.clientEndpoint) this.#o.hooks.drop(memberId, chain, 'endpoint-changed');
    return record;
  }
}
