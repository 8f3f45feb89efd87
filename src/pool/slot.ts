// One cached chain: its SDK client, the newest record this process knows for it, and the glue
// between the SDK layer (refresh hook, interceptors) and the coordinator.

import type { B24OAuth, HandlerRefreshAuth } from '@bitrix24/b24jssdk';
import type { Clock } from '../clock.js';
import type { RefreshCoordinator } from '../coordinator/coordinator.js';
import type { ChainView } from '../coordinator/types.js';
import { createSdkClient, refreshHookAnswer, type SdkClientSettings } from '../sdk/client.js';
import type { InterceptedChain } from '../sdk/interceptors.js';
import { portalMove, type PortalMove } from '../sdk/move.js';
import { interceptSdkClient } from '../sdk/wire.js';
import { PortalNotInstalledError, PortalRevokedError, UserChainMissingError, VerificationFailedError } from '../errors.js';
import type { RequestBudget } from '../budget/budget.js';
import { userIdOf, type PortalRecord } from '../store/token-store.js';

/**
 * The longest a chain's requests wait for the read of a newer record the store's change feed
 * announced, ms: one store round trip, long past it only when the store stalls.
 */
export const ANNOUNCED_HOLD_MS = 2_000;

/** What a slot needs from the pool that owns it. */
export interface SlotContext {
  readonly coordinator: RefreshCoordinator;
  readonly clock: Clock;
  readonly settings: SdkClientSettings;
  /** Counts a request re-sent with the current token. */
  countResend(): void;
  /** Whether the OAuth host confirms, for this installation, the REST root a 3xx points at. */
  confirmMove(record: PortalRecord, move: PortalMove): Promise<boolean>;
  /** The pool's request budget, when on. */
  readonly budget?: RequestBudget | undefined;
}

/** A cached chain. */
export class ChainSlot implements ChainView, InterceptedChain {
  /** The newest record this process knows. Only ever replaced by a persisted one. */
  record: PortalRecord;
  /** Seconds before `expires` at which this pair counts as expiring (refresh-ahead plus jitter). */
  windowSec: number;
  /** The chain's SDK client. */
  readonly client: B24OAuth;
  /** An access token a portal refused while it was the current one. */
  #rejectedToken: string | undefined;
  /** The read of a newer record the change feed announced, while it is on its way (see {@link ChainSlot.following}). */
  #announced: Promise<void> | undefined;
  /** The REST root the SDK client was built with (the SDK never changes it). */
  readonly #sdkEndpoint: string;
  readonly #context: SlotContext;
  /** The pool's request budget (read by the interceptors). */
  readonly budget: RequestBudget | undefined;

  /** Builds the chain's SDK client, its refresh hook and its interceptors. */
  constructor(record: PortalRecord, context: SlotContext) {
    this.#context = context;
    this.budget = context.budget;
    this.record = record;
    this.windowSec = context.coordinator.windowFor(record);
    this.#sdkEndpoint = record.clientEndpoint;
    this.client = createSdkClient(record, this.#shiftSec(), context.settings);
    this.client.setCustomRefreshAuth(() => this.#sdkRefresh());
    interceptSdkClient(this.client, this, context.settings.restRoots);
  }

  /** Takes a newer persisted record (a no-op for the one held). */
  adopt(record: PortalRecord): void {
    if (record.version > this.record.version) {
      this.record = record;
      this.windowSec = this.#context.coordinator.windowFor(record);
      this.#rejectedToken = undefined;
    }
  }

  /**
   * Holds this chain's requests while `read`, the re-read of a newer record the store's change feed
   * announced, is on its way: the write announced is most likely another worker's refresh, which
   * killed the access token held here, so a request leaving now would only meet a 401. Failures of
   * `read` are the caller's; here they only end the hold.
   */
  following(read: Promise<unknown>): void {
    // Bounded: a store that stalls must not hold every call of the chain (a request with the old
    // token that meets a 401 is re-sent with the current one anyway).
    const stop = new AbortController();
    const cap = this.#context.clock.sleep(ANNOUNCED_HOLD_MS, stop.signal).catch(() => undefined);
    const held: Promise<void> = Promise.race([read.then(() => stop.abort(), () => stop.abort()), cap]);
    this.#announced = held;
    void held.then(() => {
      if (this.#announced === held) this.#announced = undefined;
    });
  }

  /** {@inheritDoc InterceptedChain.announced} */
  announced(): Promise<void> | undefined {
    return this.#announced;
  }

  /** {@inheritDoc InterceptedChain.settleFlight} */
  async settleFlight(): Promise<void> {
    // A newer record announced by the feed first (the read is one store round trip), then a
    // refresh of this process's: whichever replaces the token, the request leaves with the new one.
    if (this.#announced !== undefined) await this.#announced;
    const flight = this.#context.coordinator.flight(this.record.memberId, this.record.chain);
    if (flight === undefined) return;
    await flight.then(
      (record) => this.adopt(record),
      () => undefined, // the request goes out with the old token; its 401 is handled by the interceptor
    );
  }

  /** {@inheritDoc InterceptedChain.replaceRejected} */
  replaceRejected(rejectedToken: string): Promise<PortalRecord> {
    return this.#typed(this.#context.coordinator.ensureFresh(this, { reason: 'rejected', rejectedToken }));
  }

  /** {@inheritDoc InterceptedChain.recheck} */
  async recheck(): Promise<PortalRecord> {
    const { memberId, chain } = this.record;
    this.adopt(await this.#typed(this.#context.coordinator.readActive(memberId, chain)));
    return this.record;
  }

  /** A user's chain that is gone or revoked surfaces as {@link UserChainMissingError}. */
  async #typed<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (error) {
      const { memberId, chain } = this.record;
      const userId = userIdOf(chain);
      if (userId !== undefined && (error instanceof PortalRevokedError || error instanceof PortalNotInstalledError)) {
        throw new UserChainMissingError(memberId, userId, { cause: error });
      }
      throw error;
    }
  }

  /** {@inheritDoc InterceptedChain.markRejected} */
  markRejected(token: string): void {
    this.#rejectedToken = token;
  }

  /** {@inheritDoc InterceptedChain.countResend} */
  countResend(): void {
    this.#context.countResend();
  }

  /** {@inheritDoc InterceptedChain.move} */
  async move(requestUrl: string | undefined, location: string): Promise<string | undefined> {
    const move = portalMove(this.#sdkEndpoint, requestUrl, location);
    if (move === undefined) return undefined;
    if (move.root !== this.record.clientEndpoint) {
      // A 3xx is the portal's claim; the OAuth host must confirm the new address before the token goes there.
      if (!(await this.#context.confirmMove(this.record, move))) {
        throw new VerificationFailedError('The portal answered with a move the OAuth host does not confirm; nothing was sent there', {
          memberId: this.record.memberId,
        });
      }
      const stored = await this.#context.coordinator.moveEndpoint(this.record, move.root, move.host);
      if (stored === undefined) return undefined;
      this.adopt(stored);
    }
    return move.url;
  }

  /** The SDK's refresh hook: called when the SDK's (shifted) expiry has passed or after a 401. */
  async #sdkRefresh(): Promise<HandlerRefreshAuth> {
    const rejected = this.#rejectedToken;
    const record = await this.#typed(
      this.#context.coordinator.ensureFresh(this, {
        reason: rejected !== undefined && rejected === this.record.accessToken ? 'rejected' : 'expiring',
        rejectedToken: rejected,
      }),
    );
    return refreshHookAnswer(record, this.#shiftSec(), this.#context.coordinator.hostNow());
  }

  /** How early the SDK is told the pair expires: the window, plus the OAuth host's clock offset. */
  #shiftSec(): number {
    return this.windowSec + this.#context.coordinator.hostClock.offsetSec;
  }
}
