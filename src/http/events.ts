// createEventHandler: the endpoint for REST events of handlers bound with event.bind. It checks the request
// as the lifecycle handler does, parses the event, authenticates it against the store (event-auth.ts), and
// runs the user's code with the portal's pooled client; lifecycle events can be handed to the lifecycle handler.

import type { B24OAuth } from '@bitrix24/b24jssdk';
import { DEFAULT_MAX_BODY_BYTES } from '../body.js';
import { checkBudgetShare, withBudgetShare } from '../budget/priority.js';
import { assertEventContext, type EventHandlerContext } from '../context.js';
import { ErrorCode, InvalidEventError } from '../errors.js';
import { parseRestEvent } from '../events/rest.js';
import type { RestEvent, RestEventAuth, RestEventData } from '../events/types.js';
import { describeError, type Logger } from '../logger.js';
import { observedLogger } from '../logger.js';
import { positiveInteger } from '../store/adapter-options.js';
import {
  internalErrorResponse,
  jsonResponse,
  payloadTooLargeResponse,
  type PlainHandler,
  type PlainRequest,
  type PlainResponse,
} from '../plain.js';
import { authenticate, portalClient } from './event-auth.js';
import { DuplicateFilter, eventDigest, ListenerLimiter, type ListenerRefusal } from './event-limits.js';
import { isAnswer, screenRequest } from './screen.js';
import { guardMount } from './mount-guard.js';

/** What a REST event listener receives. */
export interface RestEventContext {
  /** The event name in upper case, such as `ONCRMDEALADD`. */
  readonly event: string;
  /**
   * The event's `data`, nested as sent (strings stay strings). A **claim**: whoever holds the
   * portal's `application_token` can send it, so re-read the entity through `b24` before acting on it.
   */
  readonly data: RestEventData;
  /** The portal's `member_id` (authenticated: the event carried the portal's stored `application_token`). */
  readonly memberId: string;
  /** The portal's domain as the event claims it, when sent. */
  readonly domain: string | null;
  /** The user the event's own chain belongs to, as the event claims it, when sent. */
  readonly userId: number | null;
  /** When Bitrix24 queued the event (`ts`), unix seconds, when sent. */
  readonly ts: number | null;
  /** The binding's id (`event_handler_id`), when sent. */
  readonly handlerId: number | null;
  /** The portal's pooled client: its installer's chain, refreshed through the pool's coordinator. */
  readonly b24: B24OAuth;
  /**
   * The event's `auth` block, including the **triggering user's** tokens when sent. The library
   * never stores them and never uses them for `b24`; do not log them.
   */
  readonly auth: RestEventAuth;
}

/**
 * A listener for one REST event: runs once the event was authenticated.
 * @inline
 */
export type RestEventListener = (context: RestEventContext) => void | Promise<void>;

/**
 * What {@link EventHandlerOptions.onError} receives besides the error.
 * @inline
 */
export interface RestEventErrorInfo {
  /** The event name. */
  readonly event: string;
  /** The portal. */
  readonly memberId: string;
  /** Whether the event had already been answered (with `acknowledge: 'immediately'`). */
  readonly answered: boolean;
}

/** Options of {@link createEventHandler}. */
export interface EventHandlerOptions {
  /**
   * Your `PortalClientPool` (or any `EventHandlerContext`): the handler reads portals' records
   * from its store and hands listeners `pool.clientFor(memberId)`.
   */
  readonly pool: EventHandlerContext;
  /**
   * A listener per event name (matched case-insensitively): `{ ONCRMDEALADD: async ({ data, b24 }) => {...} }`.
   * An authenticated event without a listener answers 200 and is logged at debug level.
   */
  readonly on: Readonly<Record<string, RestEventListener>>;
  /**
   * The handler ONAPPINSTALL, ONAPPUPDATE and ONAPPUNINSTALL are passed to, unchanged, so one URL
   * serves every event: usually `createLifecycleHandler({ pool })`. Without it they answer 400
   * (`UNKNOWN_EVENT`, `field: 'event'`). This handler's method, media-type and size checks apply first.
   * @defaultValue none
   */
  readonly lifecycle?: PlainHandler | undefined;
  /**
   * When to answer: `'after-listener'` answers 200 once the listener finished (500 if it threw);
   * `'immediately'` answers 200 as soon as the event is authenticated and runs the listener
   * afterwards (its error goes to `onError` and the logger). Bitrix24 serves slow handlers at a
   * lower rate and does not resend events, so `'immediately'` suits long work.
   * @defaultValue `'after-listener'`
   */
  readonly acknowledge?: 'after-listener' | 'immediately' | undefined;
  /**
   * Called when a listener throws, in either mode, after the error was logged (its class name only).
   * Its own throw is logged and ignored.
   */
  readonly onError?: ((error: unknown, info: RestEventErrorInfo) => void | Promise<void>) | undefined;
  /**
   * The largest raw body accepted, in bytes; larger ones get 413 (also for lifecycle events passed on).
   * @defaultValue 65536 (64 KiB)
   */
  readonly maxBodyBytes?: number | undefined;
  /** Where to log. @defaultValue the pool's logger */
  readonly logger?: Logger | undefined;
  /**
   * Listeners running at once, in all portals; the next ones wait for a turn (turns go to the
   * portals in rotation).
   * @defaultValue 64
   */
  readonly maxRunningListeners?: number | undefined;
  /**
   * Listeners of one portal running at once.
   * @defaultValue 4
   */
  readonly maxRunningListenersPerPortal?: number | undefined;
  /**
   * Listeners waiting for a turn, in all portals; past it an event is answered 503 with `Retry-After`
   * and a warning (Bitrix24 does not resend it: the event is lost).
   * @defaultValue 1000
   */
  readonly maxQueuedListeners?: number | undefined;
  /**
   * Listeners of one portal waiting for a turn; past it the portal's event is answered 429 with
   * `Retry-After` and a warning naming the portal (Bitrix24 does not resend it: the event is lost).
   * @defaultValue 100
   */
  readonly maxQueuedListenersPerPortal?: number | undefined;
  /**
   * The share of each portal's request budget (rate and burst) the REST requests of listeners may
   * use; the rest is kept for the app's own calls (see `withBudgetShare`). `1`: no limit of their own.
   * @defaultValue 0.5
   */
  readonly listenerBudgetShare?: number | undefined;
}

/**
 * Counts of {@link EventHandler.stats}.
 * @inline
 */
export interface EventHandlerStats {
  /** Listeners running now. */
  readonly running: number;
  /** Listeners waiting for a turn now. */
  readonly queued: number;
  /** Events refused (429/503) because too many listeners were pending, since the handler was created. */
  readonly refused: number;
  /** Events answered 200 without a run because an identical one was waiting for its turn. */
  readonly duplicates: number;
}

/**
 * The handler {@link createEventHandler} returns: a `PlainHandler` with its body limit.
 * @inline
 */
export interface EventHandler extends PlainHandler {
  /** The largest raw body accepted, in bytes. */
  readonly maxBodyBytes: number;
  /** Resolves once every listener started after an immediate answer has finished (for shutdown and tests). */
  drain(): Promise<void>;
  /** Listeners running and waiting now, events refused and duplicates dropped so far. */
  stats(): EventHandlerStats;
}

/** A warning per portal and bound at most this often, with the count refused since the last one. */
const REFUSAL_WARN_MS = 10_000;
/** Seconds a refused sender is told to wait. */
const BUSY_RETRY_AFTER_SEC = 5;

function listenersOf(on: unknown): Map<string, RestEventListener> {
  if (on === null || typeof on !== 'object') throw new TypeError('options.on must be an object of listeners by event name');
  const listeners = new Map<string, RestEventListener>();
  for (const [name, listener] of Object.entries(on)) {
    const upper = name.toUpperCase();
    if (typeof listener !== 'function') throw new TypeError(`options.on.${name} must be a function`);
    if (listeners.has(upper)) throw new TypeError(`options.on names ${upper} twice`);
    listeners.set(upper, listener as RestEventListener);
  }
  return listeners;
}

/**
 * Creates the handler for REST events: what Bitrix24 posts to a URL the app bound with
 * `event.bind` (`ONCRMDEALADD`, `ONTASKUPDATE`, ...). Mount it with `toNodeHandler` or
 * `toFetchHandler`.
 *
 * For each event: the body is parsed with `parseRestEvent`; the portal's record is read from the
 * store; the record must exist, be active (not revoked or suspended) and hold an
 * `application_token` equal, in constant time, to the event's. Only then does the listener run,
 * with the portal's pooled client (`pool.clientFor(memberId)`). Nothing is ever written.
 *
 * The event's own tokens belong to the user whose action fired it (or the binding's `auth_type`
 * user), not to the portal: they are never stored and never used for the pool's chain. On newer
 * portals every user who opens the app page holds the `application_token`, so a matching token
 * tells an event from a stranger's request, not from a portal user's: treat `data` as a claim and
 * re-read the entity through `b24` before acting on it.
 *
 * Answers (JSON): 200 `{ ok: true }` once the listener finished (or at once with
 * `acknowledge: 'immediately'`), also for an event without a listener; 400 malformed event
 * (`{ error, field }`); 403 `VERIFICATION_FAILED` for an unknown, revoked or suspended portal, a
 * record without an `application_token`, or a mismatch (a warning names the portal and the reason);
 * 405 not a POST; 413 body over `maxBodyBytes`; 415 neither form nor JSON; 500 `INTERNAL_ERROR`
 * when the listener threw (no details) or the store failed (503 with `Retry-After` when it was
 * unreachable: the answer never says it is the store). No answer and no log line holds a token.
 *
 * Bounded, since any user of the portal can send its events: at most `maxRunningListenersPerPortal`
 * listeners of a portal (and `maxRunningListeners` in all) run at once, the next wait for a turn
 * (turns go to the portals in rotation); past `maxQueuedListenersPerPortal` waiting the answer is 429
 * (past `maxQueuedListeners`, 503), `{ error: 'RATE_LIMITED' }` with `Retry-After`, and a warning
 * naming the portal (at most one per portal every 10 s). An event delivered again (same portal,
 * event, `ts` and `data`) while the first waits for its turn is answered 200 and not run twice.
 * Listeners' REST requests may use at most `listenerBudgetShare` of the portal's request budget.
 *
 * @example
 * ```ts
 * const handler = createEventHandler({
 *   pool,
 *   lifecycle: createLifecycleHandler({ pool }), // ONAPPINSTALL, ONAPPUPDATE, ONAPPUNINSTALL
 *   on: {
 *     ONCRMDEALADD: async ({ data, b24 }) => {
 *       const id = (data.FIELDS as { ID: string }).ID;
 *       const deal = await b24.actions.v2.call.make({ method: 'crm.deal.get', params: { id } }); // re-read, not trust
 *     },
 *   },
 * });
 * http.createServer(toNodeHandler(handler)).listen(3000);
 * ```
 */
export function createEventHandler(options: EventHandlerOptions): EventHandler {
  const { pool, lifecycle } = options;
  assertEventContext(pool, 'options.pool');
  const listeners = listenersOf(options.on);
  if (lifecycle !== undefined && typeof lifecycle !== 'function') throw new TypeError('options.lifecycle must be a handler');
  const acknowledge = options.acknowledge ?? 'after-listener';
  if (acknowledge !== 'after-listener' && acknowledge !== 'immediately') {
    throw new TypeError("options.acknowledge must be 'after-listener' or 'immediately'");
  }
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes <= 0) throw new TypeError('options.maxBodyBytes must be a positive integer');
  const onError = options.onError;
  const logger = observedLogger(options.logger ?? pool.logger);
  const running = new Set<Promise<void>>();
  const limits = {
    running: positiveInteger(options.maxRunningListeners, 'options.maxRunningListeners') ?? 64,
    runningPerPortal: positiveInteger(options.maxRunningListenersPerPortal, 'options.maxRunningListenersPerPortal') ?? 4,
    queued: positiveInteger(options.maxQueuedListeners, 'options.maxQueuedListeners') ?? 1000,
    queuedPerPortal: positiveInteger(options.maxQueuedListenersPerPortal, 'options.maxQueuedListenersPerPortal') ?? 100,
  };
  const share = options.listenerBudgetShare === undefined ? 0.5 : checkBudgetShare(options.listenerBudgetShare, 'options.listenerBudgetShare');
  const limiter = new ListenerLimiter(limits);
  const duplicates = new DuplicateFilter(limits.queued + limits.running);
  const counts = { refused: 0, duplicates: 0 };
  const warned = new Map<string, { at: number; refused: number }>();

  /** The answer to an event past a bound; a warning per portal and bound every REFUSAL_WARN_MS. */
  const busy = (event: RestEvent, refusal: ListenerRefusal): PlainResponse => {
    counts.refused++;
    const key = `${refusal} ${event.auth.memberId}`;
    const now = Date.now();
    const last = warned.get(key);
    if (last !== undefined && now - last.at < REFUSAL_WARN_MS) last.refused++;
    else {
      warned.delete(key);
      if (warned.size >= 1000) warned.delete(warned.keys().next().value as string);
      warned.set(key, { at: now, refused: 0 });
      logger.warn(
        { memberId: event.auth.memberId, event: event.event, bound: refusal === 'portal' ? 'maxQueuedListenersPerPortal' : 'maxQueuedListeners', refusedSinceLastWarning: last?.refused ?? 0 },
        'REST event refused: too many listeners pending',
      );
    }
    return jsonResponse(refusal === 'portal' ? 429 : 503, { error: ErrorCode.RateLimited }, { 'retry-after': String(BUSY_RETRY_AFTER_SEC) });
  };

  /** Runs a listener; a throw is logged (class name only) and reported. Never rejects. */
  const run = async (listener: RestEventListener, context: RestEventContext, answered: boolean): Promise<boolean> => {
    try {
      await withBudgetShare(share, () => listener(context));
      return true;
    } catch (error) {
      const info: RestEventErrorInfo = { event: context.event, memberId: context.memberId, answered };
      logger.error({ memberId: info.memberId, event: info.event, answered, err: describeError(error) }, 'REST event listener failed');
      if (onError !== undefined) {
        try {
          await onError(error, info);
        } catch (hookError) {
          logger.error({ memberId: info.memberId, event: info.event, err: describeError(hookError) }, 'onError hook failed');
        }
      }
      return false;
    }
  };

  const dispatch = async (event: RestEvent): Promise<PlainResponse> => {
    const refused = await authenticate(pool, logger, event);
    if (refused !== undefined) return refused;
    const memberId = event.auth.memberId;
    const listener = listeners.get(event.event);
    if (listener === undefined) {
      logger.debug({ memberId, event: event.event }, 'REST event without a listener; answered 200');
      return jsonResponse(200, { ok: true });
    }
    const client = await portalClient(pool, logger, event);
    if ('response' in client) return client.response;
    const digest = eventDigest(event);
    if (duplicates.waiting(digest)) {
      counts.duplicates++; // counted, not logged: a flood of replays must not become a flood of log lines
      return jsonResponse(200, { ok: true });
    }
    const admitted = limiter.admit(memberId);
    if (typeof admitted === 'string') {
      duplicates.started(digest);
      return busy(event, admitted);
    }
    const context: RestEventContext = Object.freeze({
      event: event.event,
      data: event.data,
      memberId,
      domain: event.auth.domain,
      userId: event.auth.userId,
      ts: event.ts,
      handlerId: event.handlerId,
      b24: client.client,
      auth: event.auth,
    });
    /** Waits for the listener's turn, runs it, hands the turn on. */
    const inTurn = async (answered: boolean): Promise<boolean> => {
      const release = await admitted;
      duplicates.started(digest);
      try {
        return await run(listener, context, answered);
      } finally {
        release();
      }
    };
    if (acknowledge === 'immediately') {
      const task = inTurn(true).then(() => undefined);
      running.add(task);
      void task.finally(() => running.delete(task));
      return jsonResponse(200, { ok: true });
    }
    return (await inTurn(false)) ? jsonResponse(200, { ok: true }) : internalErrorResponse();
  };

  const handle = async (request: PlainRequest): Promise<PlainResponse> => {
    const screened = screenRequest(request, maxBodyBytes);
    if (isAnswer(screened)) return screened;
    let event: RestEvent;
    try {
      event = parseRestEvent(request.body ?? '', { ...screened, maxBytes: maxBodyBytes });
    } catch (error) {
      if (!(error instanceof InvalidEventError)) throw error;
      if (error.reason === 'too_large') return payloadTooLargeResponse();
      if (error.reason === 'lifecycle' && lifecycle !== undefined) return lifecycle(request);
      logger.info({ field: error.field, reason: error.reason, code: error.code }, 'Malformed REST event refused');
      return jsonResponse(400, { error: error.code, field: error.field });
    }
    return dispatch(event);
  };

  const handler = async (request: PlainRequest): Promise<PlainResponse> => {
    try {
      return await handle(request);
    } catch (error) {
      logger.error({ err: describeError(error) }, 'REST event handler failed unexpectedly');
      return internalErrorResponse();
    }
  };
  const drain = async (): Promise<void> => {
    while (running.size > 0) await Promise.all([...running]);
  };
  const stats = (): EventHandlerStats => ({ ...limiter.counts(), ...counts });
  return Object.assign(guardMount(handler, 'The REST event handler (createEventHandler)', logger), { maxBodyBytes, drain, stats });
}
