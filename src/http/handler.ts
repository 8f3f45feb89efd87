// createLifecycleHandler: the one endpoint for ONAPPINSTALL, ONAPPUPDATE and ONAPPUNINSTALL. This file
// checks the request (method, body kind, size), parses the event and dispatches it; install.ts and
// uninstall.ts prove it genuine and write; every refusal is a LifecycleAnswerError turned into its answer.

import { DEFAULT_MAX_BODY_BYTES } from '../body.js';
import { assertContext, type PortalTokensContext } from '../context.js';
import { InvalidEventError, ProofsThrottledError } from '../errors.js';
import { checkOptionalFunction, checkOptionalMethods } from '../errors/options.js';
import { claimKey, ProofGate, type ProofLimits } from '../guard/proof-gate.js';
import { parseInstallEvent } from '../events/parse.js';
import type { InstallEvent, LifecycleEvent, UninstallEvent, UpdateEvent } from '../events/types.js';
import { describeError, type Logger } from '../logger.js';
import { observedLogger } from '../logger.js';
import {
  internalErrorResponse,
  jsonResponse,
  payloadTooLargeResponse,
  type PlainHandler,
  type PlainRequest,
  type PlainResponse,
} from '../plain.js';
import { normalizeTrustedHosts } from '../protocol/oauth-hosts.js';
import type { PortalRecord } from '../store/token-store.js';
import { LifecycleAnswerError } from './answers.js';
import { isAnswer, screenRequest } from './screen.js';
import { handleInstallOrUpdate } from './install.js';
import type { FileInstallSpool, SpoolDrainResult } from '../spool/file-spool.js';
import { applySpooled } from '../chains/replay.js';
import type { LifecycleKit, UninstallOutcome } from '../chains/kit.js';
import { lifecycleAnswers } from './lifecycle-kit.js';
import { handleUninstall } from './uninstall.js';
import { guardMount } from './mount-guard.js';

/** Options of {@link createLifecycleHandler}. */
export interface LifecycleHandlerOptions {
  /**
   * Your `PortalClientPool` (or any `PortalTokensContext`): the handler uses its store, OAuth
   * client, clock and logger, and tells it about each write.
   */
  readonly pool: PortalTokensContext;
  /**
   * The OAuth hosts an install or update may name as its `server_endpoint`, and where its tokens are
   * verified. An event naming any other host is refused (403), so every stored `serverEndpoint` is
   * one of these, written in its canonical form `<host>/rest/`.
   * @defaultValue `['https://oauth.bitrix.info', 'https://oauth.bitrix24.tech']`
   */
  readonly trustedOAuthHosts?: readonly string[] | undefined;
  /**
   * Verify install and update events by asking the trusted OAuth host's `app.info` about the
   * received access token (its `client_id` must be this app's, its `member_id` and domain the
   * event's). `false` skips that call: then anyone who knows a `member_id` can register a portal,
   * and a known portal's record only changes when the event's `application_token` equals the
   * stored one. The handler logs a warning when created with `false`.
   * @defaultValue true
   */
  readonly verify?: boolean | undefined;
  /**
   * The largest raw body accepted, in bytes; larger ones get 413.
   * @defaultValue 65536 (64 KiB)
   */
  readonly maxBodyBytes?: number | undefined;
  /**
   * Called after a verified install or update was stored (and the pool told), with the event and
   * the record as stored. It cannot change the answer: a throw is logged (its name only), and the
   * answer is sent after at most {@link LifecycleHandlerOptions.hookTimeoutMs} (by the pool's clock) even if it is still running.
   */
  readonly onInstalled?: ((event: InstallEvent | UpdateEvent, record: PortalRecord) => void | Promise<void>) | undefined;
  /**
   * Called after an authenticated uninstall deleted the portal's records, with the event, the
   * portal's record as it was, and whether the OAuth host confirmed the uninstall (`confirmed`:
   * when no stored chain was alive to ask, only dead records were removed, the app may still be
   * installed, and the event's `clean` is `false`). Same rules as {@link LifecycleHandlerOptions.onInstalled}.
   */
  readonly onUninstalled?: ((event: UninstallEvent, record: PortalRecord, outcome: UninstallOutcome) => void | Promise<void>) | undefined;
  /**
   * How long the answer waits for a hook, in milliseconds. Bitrix24 serves slow handlers at a
   * lower rate, so a hook that needs longer should hand its work off.
   * @defaultValue 2000
   */
  readonly hookTimeoutMs?: number | undefined;
  /** Where to log. @defaultValue the pool's logger */
  readonly logger?: Logger | undefined;
  /**
   * Where a proven install or update waits when the store is unreachable (a transient
   * `StoreError`): the handler answers 200 and applies it once the store is back (after the next
   * store success, and every `spoolReplayMs`), never over a newer event. Bitrix24 delivers lifecycle
   * events at most once, so without a spool such an event is answered 503 and the portal is lost
   * until its administrator reinstalls.
   */
  readonly spool?: Pick<FileInstallSpool, 'put' | 'drain'> | undefined;
  /** How often the spool is replayed while it may hold events, ms (the timer does not keep the process alive). @defaultValue 30000 */
  readonly spoolReplayMs?: number | undefined;
  /**
   * Where each event is admitted before it may cost a request to an OAuth host: a process-wide
   * and a per-portal ceiling on events being proven at once and per minute. Past a ceiling the
   * answer is 429 `PROOFS_THROTTLED` with `Retry-After` (and a warning naming the portal); an
   * event refused 403 is remembered and an identical one is refused again without any request (`docs/security.md`,
   * "Tenant isolation").
   * @defaultValue the pool's gate (the one its `rememberUser` and `reseed` use), else a new one with `proofLimits`
   */
  readonly proofGate?: ProofGate | undefined;
  /** The ceilings of the handler's own gate when neither `proofGate` nor the pool's exists. @defaultValue see `ProofLimits` */
  readonly proofLimits?: ProofLimits | undefined;
}

/**
 * The handler {@link createLifecycleHandler} returns: a `PlainHandler` with its body limit.
 * @inline
 */
export interface LifecycleHandler extends PlainHandler {
  /** The largest raw body accepted, in bytes. */
  readonly maxBodyBytes: number;
  /**
   * Applies what the spool holds now (no-op without a spool); concurrent calls share one replay.
   * @returns what the replay did, or `undefined` without a spool.
   */
  replaySpool(): Promise<SpoolDrainResult | undefined>;
  /** Stops the spool's replay timer. */
  close(): void;
}

const DEFAULT_HOOK_TIMEOUT_MS = 2000;

/**
 * Creates the handler for Bitrix24's lifecycle events. One URL serves install, update and
 * uninstall: the handler dispatches on the event's `event` field.
 *
 * - **ONAPPINSTALL / ONAPPUPDATE**: the event's `server_endpoint` must be a trusted OAuth host,
 *   and (unless `verify: false`) the event's refresh token is proven there; the fresh pair is what
 *   is stored, and a live stored chain is replaced only by an administrator's (the chain core,
 *   `docs/security.md` "Chain rules"). Then the pool is told and `onInstalled` run. A forged event
 *   never changes a stored record.
 * - **ONAPPUNINSTALL**: the event's `application_token` is compared in constant time with the
 *   stored one; on a match every chain of the portal is probed at the OAuth host: any live one
 *   refuses the uninstall (403); with none live, the dead chains are removed, the pool told, and
 *   `onUninstalled` runs with `{ confirmed }` saying whether the OAuth host confirmed the app is
 *   gone. An uninstall for a portal
 *   with no record answers 200 as well (uninstall is idempotent, and the answer does not reveal
 *   whether a portal is known). A portal stored without an `application_token` (one obtained
 *   through the authorization-code flow) cannot be uninstalled by an event: 403; its chain stops
 *   working on its own and the pool marks it revoked.
 *
 * Answers (JSON, `{ ok: true }` on success, `{ error, ... }` otherwise):
 * 200 stored or removed; 400 malformed event (`{ error, field }` from the parser); 403 not proven
 * genuine; 405 not a POST; 413 body over `maxBodyBytes`; 429 `PROOFS_THROTTLED` with `Retry-After`
 * (a ceiling of the proof gate, see {@link LifecycleHandlerOptions.proofGate}); 415 a body that is neither
 * `application/x-www-form-urlencoded` nor `application/json` (a body without a content type is
 * sniffed: `{` starts JSON, anything else is a form); 502/503 the trusted OAuth host answered
 * garbage or could not be reached (nothing stored: Bitrix24 does not resend events, so such a
 * portal needs a reinstall or the authorization-code flow); 500 the store failed. No answer and
 * no log line contains a token, a stack trace or an error message from outside this library.
 *
 * @example
 * ```ts
 * const handler = createLifecycleHandler({ pool });
 * http.createServer(toNodeHandler(handler)).listen(3000);
 * ```
 */
export function createLifecycleHandler(options: LifecycleHandlerOptions): LifecycleHandler {
  const { pool } = options;
  assertContext(pool, 'options.pool');
  // Checked now: a bad one would otherwise fail later, inside a request or the spool's timer.
  checkOptionalMethods('options.spool', options.spool, ['put', 'drain'], 'an install spool (FileInstallSpool)');
  checkOptionalMethods('options.logger', options.logger, ['debug', 'info', 'warn', 'error'], 'a pino-compatible logger');
  checkOptionalFunction('options.onInstalled', options.onInstalled);
  checkOptionalFunction('options.onUninstalled', options.onUninstalled);
  const trusted = normalizeTrustedHosts(options.trustedOAuthHosts, 'options.trustedOAuthHosts');
  const verify = options.verify ?? true;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes <= 0) {
    throw new TypeError('options.maxBodyBytes must be a positive integer');
  }
  const hookTimeoutMs = options.hookTimeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  if (!Number.isFinite(hookTimeoutMs) || hookTimeoutMs < 0) {
    throw new TypeError('options.hookTimeoutMs must be a non-negative number');
  }
  const logger = observedLogger(options.logger ?? pool.logger);
  if (!verify) {
    logger.warn(
      { verify: false },
      'Lifecycle handler created with verify: false: install events are NOT checked with the OAuth host, so anyone who knows a member_id can register a portal',
    );
  }
  const spool = options.spool;
  let replaying: Promise<SpoolDrainResult | undefined> | undefined;
  const replaySpool = (): Promise<SpoolDrainResult | undefined> => {
    if (spool === undefined) return Promise.resolve(undefined);
    replaying ??= spool
      .drain((entry) => applySpooled(kit, entry))
      .catch((error: unknown) => {
        logger.error({ err: describeError(error) }, 'Replaying the install spool failed');
        return undefined;
      })
      .finally(() => {
        replaying = undefined;
      });
    return replaying;
  };
  const kit: LifecycleKit = {
    context: pool,
    logger,
    verify,
    trusted,
    hookTimeoutMs,
    onInstalled: options.onInstalled,
    onUninstalled: options.onUninstalled,
    spool,
    replaySpool: spool === undefined ? undefined : replaySpool,
    answers: lifecycleAnswers(logger, trusted),
  };
  const replayMs = options.spoolReplayMs ?? 30_000;
  if (!Number.isFinite(replayMs) || replayMs <= 0) throw new TypeError('options.spoolReplayMs must be a positive number');
  const timer = spool === undefined ? undefined : setInterval(() => void replaySpool(), replayMs);
  timer?.unref();

  const gate = options.proofGate ?? gateOf(pool.oauth) ?? new ProofGate(options.proofLimits, () => pool.clock.now());

  const handle = async (request: PlainRequest): Promise<PlainResponse> => {
    const screened = screenRequest(request, maxBodyBytes);
    if (isAnswer(screened)) return screened;
    let event: LifecycleEvent;
    try {
      event = parseInstallEvent(request.body ?? '', { ...screened, maxBytes: maxBodyBytes, now: () => pool.clock.now() });
    } catch (error) {
      if (!(error instanceof InvalidEventError)) throw error;
      if (error.reason === 'too_large') return payloadTooLargeResponse();
      logger.info({ field: error.field, reason: error.reason, code: error.code }, 'Malformed lifecycle event refused');
      return jsonResponse(400, { error: error.code, field: error.field });
    }
    return admitted(gate, event, logger, () => (event.type === 'uninstall' ? handleUninstall(kit, event) : handleInstallOrUpdate(kit, event)));
  };

  const handler = async (request: PlainRequest): Promise<PlainResponse> => {
    try {
      return await handle(request);
    } catch (error) {
      // The steps log each refusal where it happens; only the unexpected is logged here.
      if (error instanceof LifecycleAnswerError) return error.toResponse();
      logger.error({ err: describeError(error) }, 'Lifecycle handler failed unexpectedly');
      return internalErrorResponse();
    }
  };
  return Object.assign(guardMount(handler, 'The lifecycle handler (createLifecycleHandler)', logger), {
    maxBodyBytes,
    replaySpool,
    close: () => {
      if (timer !== undefined) clearInterval(timer);
    },
  });
}

/** The proof gate of a pool's OAuth client, when it has one. */
function gateOf(oauth: unknown): ProofGate | undefined {
  const gate = (oauth as { proofGate?: unknown }).proofGate;
  return gate instanceof ProofGate ? gate : undefined;
}

/**
 * Runs one event's handling as an admitted proof. An identical event (same fields) in flight shares
 * its answer; one refused 403 before is refused again at no cost; past a ceiling the answer is 429
 * with `Retry-After`.
 */
function admitted(gate: ProofGate, event: LifecycleEvent, logger: Logger, handle: () => Promise<PlainResponse>): Promise<PlainResponse> {
  const memberId = event.auth.memberId;
  const run = async (): Promise<PlainResponse> => {
    let release: () => void;
    try {
      release = gate.admit(memberId, logger);
    } catch (error) {
      if (!(error instanceof ProofsThrottledError)) throw error;
      return jsonResponse(error.status, { error: error.code }, { 'retry-after': String(Math.ceil(error.retryAfterMs / 1000)) });
    }
    try {
      return await handle();
    } finally {
      release();
    }
  };
  return gate.share(claimKey('lifecycle', JSON.stringify(event)), run, (error) => error instanceof LifecycleAnswerError && error.status === 403);
}
