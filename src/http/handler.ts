// createLifecycleHandler: the one endpoint for ONAPPINSTALL, ONAPPUPDATE and ONAPPUNINSTALL. It proves an
// event genuine before it touches the store, writes, tells the pool, and answers with a small JSON status.

import { createHash, timingSafeEqual } from 'node:crypto';
import {
  ErrorCode,
  InvalidEventError,
  OAuthRejectedError,
  OAuthUnavailableError,
} from '../errors.js';
import { parseInstallEvent } from '../events/parse.js';
import type { InstallEvent, LifecycleEvent, PortalAuth, UninstallEvent, UpdateEvent } from '../events/types.js';
import { describeError, type Logger } from '../logger.js';
import type { OAuthClient } from '../oauth/oauth-client.js';
import type { PoolLifecycleChange } from '../pool/pool.js';
import type { PortalRecord, TokenStore } from '../store/token-store.js';
import { portalRecordFromAuth } from './record.js';
import { normalizeTrustedHosts, serverEndpointOf, trustedBaseForServerEndpoint } from './trusted-hosts.js';
import {
  DEFAULT_MAX_BODY_BYTES,
  headerValue,
  jsonResponse,
  payloadTooLargeResponse,
  type PlainHandler,
  type PlainRequest,
  type PlainResponse,
} from './types.js';

/**
 * The part of a `PortalClientPool` the lifecycle handler and the authorization flow use. The pool
 * satisfies it as is; a test or a custom setup can pass any object with these members.
 */
export interface LifecyclePool {
  /** Where portals' records live. */
  readonly store: TokenStore;
  /** The app's client for the OAuth hosts (verification and code exchange). */
  readonly oauth: Pick<OAuthClient, 'clientId' | 'appInfo' | 'exchangeCode'>;
  /** Where the handler logs; only identifiers and outcomes, never token values. */
  readonly logger: Logger;
  /** The pool's clock, unix milliseconds. */
  now(): number;
  /** Drops the portal's cached client and emits the matching pool event; called after each write. */
  notify(change: PoolLifecycleChange): void;
}

/** Options of {@link createLifecycleHandler}. */
export interface LifecycleHandlerOptions {
  /** The pool whose store, OAuth client, clock and logger the handler uses. */
  readonly pool: LifecyclePool;
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
   * answer is sent after at most {@link LifecycleHandlerOptions.hookTimeoutMs} even if it is still running.
   */
  readonly onInstalled?: ((event: InstallEvent | UpdateEvent, record: PortalRecord) => void | Promise<void>) | undefined;
  /**
   * Called after an authenticated uninstall deleted the portal's record, with the event and the
   * record as it was. Same rules as {@link LifecycleHandlerOptions.onInstalled}.
   */
  readonly onUninstalled?: ((event: UninstallEvent, record: PortalRecord) => void | Promise<void>) | undefined;
  /**
   * How long the answer waits for a hook, in milliseconds. Bitrix24 serves slow handlers at a
   * lower rate, so a hook that needs longer should hand its work off.
   * @defaultValue 2000
   */
  readonly hookTimeoutMs?: number | undefined;
  /** Where to log. @defaultValue the pool's logger */
  readonly logger?: Logger | undefined;
}

/** The handler {@link createLifecycleHandler} returns: a {@link PlainHandler} with its body limit. */
export interface LifecycleHandler extends PlainHandler {
  /** The largest raw body accepted, in bytes. */
  readonly maxBodyBytes: number;
}

/**
 * The `error` values a lifecycle answer can carry besides the parser's codes, so clients and
 * tests can compare against constants.
 */
export const LifecycleAnswerError = {
  /** 405: only POST is served. */
  MethodNotAllowed: 'METHOD_NOT_ALLOWED',
  /** 413: the body exceeds the limit. */
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  /** 415: the body is neither form-urlencoded nor JSON. */
  UnsupportedMediaType: 'UNSUPPORTED_MEDIA_TYPE',
  /** 403: the event could not be proven genuine; nothing changed. */
  VerificationFailed: ErrorCode.VerificationFailed,
  /** 503: the trusted OAuth host could not be asked; nothing changed. */
  OAuthUnavailable: ErrorCode.OAuthUnavailable,
  /** 502: the trusted OAuth host answered something unusable; nothing changed. */
  OAuthInvalidResponse: ErrorCode.OAuthInvalidResponse,
  /** 500: the store failed; nothing (or, for a failed delete, not everything) changed. */
  StoreFailure: ErrorCode.StoreFailure,
  /** 500: an unexpected failure inside the handler. */
  Internal: 'INTERNAL_ERROR',
} as const;

const DEFAULT_HOOK_TIMEOUT_MS = 2000;
const FORM_TYPE = 'application/x-www-form-urlencoded';
const JSON_TYPE = 'application/json';

/** Why a refused event was refused, for the log (never sent to the caller). */
type Refusal =
  | 'untrusted_server_endpoint'
  | 'token_rejected'
  | 'client_id_mismatch'
  | 'member_id_mismatch'
  | 'domain_mismatch'
  | 'application_token_mismatch'
  | 'no_stored_application_token';

/**
 * Creates the handler for Bitrix24's lifecycle events. One URL serves install, update and
 * uninstall: the handler dispatches on the event's `event` field.
 *
 * - **ONAPPINSTALL / ONAPPUPDATE**: the event's `server_endpoint` must be a trusted OAuth host,
 *   and (unless `verify: false`) that host's `app.info` must confirm that the received access token
 *   belongs to this app and to the event's portal. Only then is the record written (a reinstall
 *   replaces the chain and may change the `application_token`), the pool told, and `onInstalled`
 *   run. A forged event never changes a stored record.
 * - **ONAPPUNINSTALL**: the event's `application_token` is compared in constant time with the
 *   stored one; on a match the record is deleted and the pool told. An uninstall for a portal
 *   with no record answers 200 as well (uninstall is idempotent, and the answer does not reveal
 *   whether a portal is known). A portal stored without an `application_token` (one obtained
 *   through the authorization-code flow) cannot be uninstalled by an event: 403; its chain stops
 *   working on its own and the pool marks it revoked.
 *
 * Answers (JSON, `{ ok: true }` on success, `{ error, ... }` otherwise):
 * 200 stored or removed; 400 malformed event (`{ error, field }` from the parser); 403 not proven
 * genuine; 405 not a POST; 413 body over `maxBodyBytes`; 415 a body that is neither
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
  if (pool === null || typeof pool !== 'object' || pool.store === undefined || pool.oauth === undefined) {
    throw new TypeError('options.pool must be a PortalClientPool (store, oauth, logger, now, notify)');
  }
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
  const logger = options.logger ?? pool.logger;
  if (!verify) {
    logger.warn(
      { verify: false },
      'Lifecycle handler created with verify: false: install events are NOT checked with the OAuth host, so anyone who knows a member_id can register a portal',
    );
  }

  const refuse = (reason: Refusal, event: LifecycleEvent): PlainResponse => {
    logger.warn({ memberId: event.auth.memberId, event: event.event, reason }, 'Lifecycle event refused');
    return jsonResponse(403, { error: ErrorCode.VerificationFailed });
  };

  const storeFailed = (error: unknown, event: LifecycleEvent, operation: string): PlainResponse => {
    logger.error(
      { memberId: event.auth.memberId, event: event.event, operation, err: describeError(error) },
      'Token store failed while handling a lifecycle event',
    );
    return jsonResponse(500, { error: ErrorCode.StoreFailure });
  };

  const notify = (change: PoolLifecycleChange): void => {
    try {
      pool.notify(change);
    } catch (error) {
      // The write already happened; a pool that failed to react must not turn it into a 5xx.
      logger.error({ memberId: change.memberId, change: change.type, err: describeError(error) }, 'Pool notification failed');
    }
  };

  const runHook = async (name: string, memberId: string, run: () => void | Promise<void>): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const settled = (async () => {
      try {
        await run();
      } catch (error) {
        logger.error({ memberId, hook: name, err: describeError(error) }, 'Lifecycle hook failed');
      }
    })();
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), hookTimeoutMs);
      timer.unref();
    });
    const outcome = await Promise.race([settled.then(() => 'done' as const), timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      logger.warn({ memberId, hook: name, hookTimeoutMs }, 'Lifecycle hook still running; answered without waiting for it');
    }
  };

  const handleChain = async (event: InstallEvent | UpdateEvent): Promise<PlainResponse> => {
    const auth = event.auth;
    const base = trustedBaseForServerEndpoint(auth.serverEndpoint, trusted);
    if (base === undefined) return refuse('untrusted_server_endpoint', event);

    let confirmed: PortalAuth = { ...auth, serverEndpoint: serverEndpointOf(base) };
    if (verify) {
      let info;
      try {
        info = await pool.oauth.appInfo(base, auth.accessToken);
      } catch (error) {
        if (error instanceof OAuthRejectedError) return refuse('token_rejected', event);
        const unavailable = error instanceof OAuthUnavailableError;
        logger.error(
          { memberId: auth.memberId, event: event.event, err: describeError(error) },
          'Could not verify a lifecycle event with the trusted OAuth host; nothing stored',
        );
        return unavailable
          ? jsonResponse(503, { error: ErrorCode.OAuthUnavailable }, { 'retry-after': '5' })
          : jsonResponse(502, { error: ErrorCode.OAuthInvalidResponse });
      }
      if (info.clientId !== pool.oauth.clientId) return refuse('client_id_mismatch', event);
      if (info.memberId !== auth.memberId) return refuse('member_id_mismatch', event);
      if (info.domain !== undefined && info.domain.toLowerCase() !== auth.domain.toLowerCase()) {
        return refuse('domain_mismatch', event);
      }
      // The authority's view of the portal's REST root wins over the payload's.
      if (info.clientEndpoint !== undefined && info.clientEndpoint !== auth.clientEndpoint) {
        confirmed = { ...confirmed, clientEndpoint: info.clientEndpoint };
      }
    }

    let existing: PortalRecord | undefined;
    try {
      existing = await pool.store.get(auth.memberId);
    } catch (error) {
      return storeFailed(error, event, 'get');
    }
    if (!verify && existing !== undefined) {
      // Unverified mode: a known portal changes only for someone who knows its application_token.
      if (existing.applicationToken === null) return refuse('no_stored_application_token', event);
      if (auth.applicationToken === null || !sameSecret(auth.applicationToken, existing.applicationToken)) {
        return refuse('application_token_mismatch', event);
      }
    }

    let stored: PortalRecord;
    try {
      stored = await pool.store.upsert(portalRecordFromAuth(confirmed, existing, pool.now()));
    } catch (error) {
      return storeFailed(error, event, 'upsert');
    }
    notify({ type: event.type === 'install' ? 'installed' : 'updated', memberId: stored.memberId });
    logger.info(
      { memberId: stored.memberId, event: event.event, verified: verify, reinstall: existing !== undefined, version: stored.version },
      event.type === 'install' ? 'Portal installed' : 'Portal updated',
    );
    const hook = options.onInstalled;
    if (hook !== undefined) await runHook('onInstalled', stored.memberId, () => hook(event, stored));
    return jsonResponse(200, { ok: true });
  };

  const handleUninstall = async (event: UninstallEvent): Promise<PlainResponse> => {
    const memberId = event.auth.memberId;
    let existing: PortalRecord | undefined;
    try {
      existing = await pool.store.get(memberId);
    } catch (error) {
      return storeFailed(error, event, 'get');
    }
    if (existing === undefined) {
      logger.info({ memberId, event: event.event }, 'Uninstall for a portal with no record; nothing to do');
      return jsonResponse(200, { ok: true });
    }
    if (existing.applicationToken === null) return refuse('no_stored_application_token', event);
    if (!sameSecret(event.auth.applicationToken, existing.applicationToken)) {
      return refuse('application_token_mismatch', event);
    }
    try {
      await pool.store.delete(memberId);
    } catch (error) {
      return storeFailed(error, event, 'delete');
    }
    notify({ type: 'uninstalled', memberId });
    logger.info({ memberId, event: event.event, clean: event.clean }, 'Portal uninstalled');
    const hook = options.onUninstalled;
    const record = existing;
    if (hook !== undefined) await runHook('onUninstalled', memberId, () => hook(event, record));
    return jsonResponse(200, { ok: true });
  };

  const handle = async (request: PlainRequest): Promise<PlainResponse> => {
    if (typeof request.method !== 'string' || request.method.toUpperCase() !== 'POST') {
      return jsonResponse(405, { error: LifecycleAnswerError.MethodNotAllowed }, { allow: 'POST' });
    }
    const body = request.body;
    const declared = headerValue(request.headers ?? {}, 'content-type');
    const contentType = classifyBody(declared, body);
    if (contentType === 'unsupported') {
      return jsonResponse(415, { error: LifecycleAnswerError.UnsupportedMediaType }, { accept: `${FORM_TYPE}, ${JSON_TYPE}` });
    }
    if ((typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body instanceof Uint8Array ? body.byteLength : 0) > maxBodyBytes) {
      return payloadTooLargeResponse();
    }

    let event: LifecycleEvent;
    try {
      event = parseInstallEvent(body ?? '', {
        ...(contentType === 'parsed' ? {} : { contentType }),
        maxBytes: maxBodyBytes,
        now: () => pool.now(),
      });
    } catch (error) {
      if (error instanceof InvalidEventError) {
        if (error.reason === 'too_large') return payloadTooLargeResponse();
        logger.info({ field: error.field, reason: error.reason, code: error.code }, 'Malformed lifecycle event refused');
        return jsonResponse(400, { error: error.code, field: error.field });
      }
      throw error;
    }

    switch (event.type) {
      case 'install':
      case 'update':
        return handleChain(event);
      case 'uninstall':
        return handleUninstall(event);
    }
  };

  const handler = async (request: PlainRequest): Promise<PlainResponse> => {
    try {
      return await handle(request);
    } catch (error) {
      logger.error({ err: describeError(error) }, 'Lifecycle handler failed unexpectedly');
      return jsonResponse(500, { error: LifecycleAnswerError.Internal });
    }
  };
  return Object.assign(handler, { maxBodyBytes });
}

/** Which parser input a body is: a declared or sniffed content type, an already-parsed object, or neither. */
function classifyBody(
  declared: string | undefined,
  body: PlainRequest['body'],
): typeof FORM_TYPE | typeof JSON_TYPE | 'parsed' | 'unsupported' {
  const raw = typeof body === 'string' || body instanceof Uint8Array;
  // A framework's body parser already took responsibility for the content type.
  if (!raw && body !== undefined) return body instanceof URLSearchParams ? FORM_TYPE : 'parsed';
  const mime = declared?.split(';')[0]?.trim().toLowerCase() ?? '';
  if (mime === FORM_TYPE) return FORM_TYPE;
  if (mime === JSON_TYPE || /^application\/[a-z0-9.+-]*\+json$/.test(mime)) return JSON_TYPE;
  if (mime !== '') return 'unsupported';
  if (body === undefined) return FORM_TYPE;
  const text = typeof body === 'string' ? body.slice(0, 64) : Buffer.from(body.subarray(0, 64)).toString('latin1');
  return text.trimStart().startsWith('{') ? JSON_TYPE : FORM_TYPE;
}

/** Constant-time equality of two secrets of any lengths: equal-length digests are compared. */
function sameSecret(received: string, stored: string): boolean {
  const a = createHash('sha256').update(received, 'utf8').digest();
  const b = createHash('sha256').update(stored, 'utf8').digest();
  return timingSafeEqual(a, b);
}

