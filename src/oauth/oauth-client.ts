// Talks to a Bitrix24 OAuth host with `fetch`: the token endpoint (refresh and code exchange) and
// `app.info`. POST with form bodies (secrets stay out of URLs), a timeout, no redirects followed,
// answers validated before use, failures classified by the `error` string (docs/protocol.md,
// "OAuth errors and whose fault they are").

import { MAX_OAUTH_ANSWER_BYTES, readBounded, TOO_LARGE } from '../body.js';
import {
  OAuthInvalidResponseError,
  OAuthRejectedError,
  OAuthUnavailableError,
} from '../errors.js';
import { claimKey, ProofGate, type ProofLimits } from '../guard/proof-gate.js';
import { classifyOAuthError, isTransientOAuthStatus, sanitizeOAuthError } from '../protocol/oauth-errors.js';
import { appInfoEndpointOf, normalizeTrustedHosts, tokenEndpointOf } from '../protocol/oauth-hosts.js';
import { trustedOAuthBaseOf } from '../guard/trusted-hosts.js';
import type { AppInfo, TokenResponse } from '../protocol/oauth-answers.js';

// Their home is src/protocol/oauth-answers.ts (context.ts names them without importing oauth/).
export type { AppInfo, TokenResponse } from '../protocol/oauth-answers.js';

// The pool still imports it from here; its home is src/protocol/oauth-hosts.ts.
export { oauthBaseFromServerEndpoint } from '../protocol/oauth-hosts.js';

/**
 * The `fetch` signature the library needs; inject your own for proxies, tracing or tests.
 * @inline
 */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** Options shared by everything that calls an OAuth host. */
export interface OAuthClientOptions {
  /** The app's `client_id`. */
  readonly clientId: string;
  /** The app's `client_secret`. Never logged, never put in a URL. */
  readonly clientSecret: string;
  /** The `fetch` to use. @defaultValue `globalThis.fetch` */
  readonly fetch?: FetchLike | undefined;
  /** How long one request may take before it counts as a transient failure, ms. @defaultValue 10000 */
  readonly timeoutMs?: number | undefined;
  /** Clock in unix ms, used to compute `expires` when an answer lacks it. @defaultValue `Date.now` */
  readonly now?: (() => number) | undefined;
  /**
   * The ceilings on proofs public handlers make through this client (see {@link ProofLimits});
   * ignored when `proofGate` is given.
   */
  readonly proofLimits?: ProofLimits | undefined;
  /** The gate this client's proofs go through. @defaultValue a new one with `proofLimits` */
  readonly proofGate?: ProofGate | undefined;
  /**
   * The OAuth hosts this client may send a token or the client secret to, checked as each request
   * leaves (an `UntrustedHostError` otherwise, nothing sent), whatever the caller passed as the base.
   * @defaultValue no check here (each caller checks against its own list)
   */
  readonly trustedOAuthHosts?: readonly string[] | undefined;
}

/** Options of {@link OAuthClient.refresh}. */
export interface RefreshOptions {
  /** Replaces the client's timeout for this request, ms. */
  readonly timeoutMs?: number | undefined;
  /**
   * Whether this refresh proves a received chain (a lifecycle event's, an app page's): identical
   * proofs in flight are shared and a refused refresh token is refused again without a request
   * for a while. The pool's own rotations pass `false`. @defaultValue true
   */
  readonly proof?: boolean | undefined;
}

const DEFAULT_EXPIRES_IN = 3600;

function asString(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

function asPositiveInt(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * A small client for one app's calls to Bitrix24 OAuth hosts.
 *
 * Every method throws {@link OAuthRejectedError} when the host answers with an `error`,
 * {@link OAuthUnavailableError} on network failure, timeout, 429 or 5xx, and
 * {@link OAuthInvalidResponseError} when a 2xx answer is not what was asked for.
 */
export class OAuthClient {
  readonly #clientId: string;
  readonly #clientSecret: string;
  readonly #fetch: FetchLike;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  /** Where this client's proofs are shared and remembered, and where public handlers admit theirs. */
  readonly proofGate: ProofGate;
  readonly #trusted: readonly string[] | undefined;

  constructor(options: OAuthClientOptions) {
    if (typeof options.clientId !== 'string' || options.clientId === '') {
      throw new TypeError('clientId must be a non-empty string');
    }
    if (typeof options.clientSecret !== 'string' || options.clientSecret === '') {
      throw new TypeError('clientSecret must be a non-empty string');
    }
    this.#clientId = options.clientId;
    this.#clientSecret = options.clientSecret;
    this.#trusted = options.trustedOAuthHosts === undefined ? undefined : normalizeTrustedHosts(options.trustedOAuthHosts, 'trustedOAuthHosts');
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.proofGate = options.proofGate ?? new ProofGate(options.proofLimits, () => this.#now());
  }

  /** The app's `client_id`. */
  get clientId(): string {
    return this.#clientId;
  }

  /** `base` when it is one of the trusted OAuth hosts (or no list was given); the refusal otherwise. */
  #checked(base: string): string | Error {
    if (this.#trusted === undefined) return base;
    try {
      return trustedOAuthBaseOf(base, this.#trusted);
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }

  /**
   * Exchanges a refresh token for a new pair at `<oauthBase>/oauth/token/`.
   * @param oauthBase - the OAuth host of the portal's stored `server_endpoint` (`https://oauth.bitrix.info`).
   * @param options - `timeoutMs` replaces the client's timeout for this request (the pool gives its
   *   refreshes a much longer one: a refresh answer that arrives late must still be taken).
   */
  refresh(oauthBase: string, refreshToken: string, options: RefreshOptions = {}): Promise<TokenResponse> {
    const checked = this.#checked(oauthBase);
    if (checked instanceof Error) return Promise.reject(checked);
    oauthBase = checked;
    const send = (): Promise<TokenResponse> => this.#token(oauthBase, { grant_type: 'refresh_token', refresh_token: refreshToken }, options.timeoutMs);
    if (options.proof === false) return send();
    return this.proofGate.share(claimKey('refresh', tokenEndpointOf(oauthBase), refreshToken), send, isRefusedClaim);
  }

  /**
   * Exchanges an authorization code (it lives 30 s) for a first pair. Every exchange is a proof of
   * the code flow's callback: it is admitted within the process's ceilings of {@link OAuthClient.proofGate}
   * (a {@link ProofsThrottledError} past them), a code in flight is exchanged once, and a refused
   * code is refused again without a request.
   */
  exchangeCode(oauthBase: string, code: string): Promise<TokenResponse> {
    const checked = this.#checked(oauthBase);
    if (checked instanceof Error) return Promise.reject(checked);
    oauthBase = checked;
    return this.proofGate.share(
      claimKey('code', tokenEndpointOf(oauthBase), code),
      () => this.proofGate.run(undefined, () => this.#token(oauthBase, { grant_type: 'authorization_code', code })),
      isRefusedClaim,
    );
  }

  /**
   * Asks the OAuth host which app and portal an access token belongs to (`<oauthBase>/rest/app.info`).
   * Only call it with an `oauthBase` from your own allow-list, never one taken from a payload.
   */
  appInfo(oauthBase: string, accessToken: string): Promise<AppInfo> {
    const checked = this.#checked(oauthBase);
    if (checked instanceof Error) return Promise.reject(checked);
    oauthBase = checked;
    const url = appInfoEndpointOf(oauthBase);
    return this.proofGate.share(claimKey('app.info', url, accessToken), () => this.#appInfo(url, accessToken), isRefusedClaim);
  }

  async #appInfo(url: string, accessToken: string): Promise<AppInfo> {
    const body = await this.#post(url, new URLSearchParams({ auth: accessToken }));
    const result = body['result'];
    if (result === null || typeof result !== 'object') {
      throw new OAuthInvalidResponseError('app.info answer has no result object');
    }
    const r = result as Record<string, unknown>;
    const install = (r['install'] !== null && typeof r['install'] === 'object' ? r['install'] : {}) as Record<
      string,
      unknown
    >;
    const clientId = asString(r['client_id']);
    const memberId = asString(install['member_id']) ?? asString(r['member_id']);
    if (clientId === undefined || memberId === undefined) {
      throw new OAuthInvalidResponseError('app.info answer lacks client_id or member_id');
    }
    const installed = install['installed'];
    return {
      clientId,
      memberId,
      domain: asString(install['domain']) ?? asString(r['domain']),
      clientEndpoint: asString(install['client_endpoint']),
      scope: asString(r['scope']),
      status: asString(install['status']) ?? asString(r['status']),
      installed: typeof installed === 'boolean' ? installed : installed === undefined ? undefined : installed === 'Y' || installed === 1 || installed === '1',
    };
  }

  /**
   * Asks a portal whether the user an access token belongs to is one of its administrators
   * (`user.admin`). `clientEndpoint` must come from a trusted source (the OAuth host's answer or a
   * stored record), never from a payload: the token is sent there.
   */
  userAdmin(clientEndpoint: string, accessToken: string): Promise<boolean> {
    const url = `${clientEndpoint.replace(/\/+$/, '')}/user.admin`;
    return this.proofGate.share(claimKey('user.admin', url, accessToken), () => this.#userAdmin(url, accessToken), () => false);
  }

  async #userAdmin(url: string, accessToken: string): Promise<boolean> {
    const body = await this.#post(url, new URLSearchParams({ auth: accessToken }));
    const result = body['result'];
    if (typeof result !== 'boolean') throw new OAuthInvalidResponseError('user.admin answer has no boolean result');
    return result;
  }

  async #token(oauthBase: string, grant: Record<string, string>, timeoutMs = this.#timeoutMs): Promise<TokenResponse> {
    const form = new URLSearchParams({
      ...grant,
      client_id: this.#clientId,
      client_secret: this.#clientSecret,
    });
    const body = await this.#post(tokenEndpointOf(oauthBase), form, timeoutMs);
    const accessToken = asString(body['access_token']);
    if (accessToken === undefined) {
      throw new OAuthInvalidResponseError('Token answer has no access_token');
    }
    const expiresIn = asPositiveInt(body['expires_in']) ?? DEFAULT_EXPIRES_IN;
    const expires = asPositiveInt(body['expires']) ?? Math.floor(this.#now() / 1000) + expiresIn;
    const userId = asPositiveInt(body['user_id']);
    return {
      accessToken,
      refreshToken: asString(body['refresh_token']),
      expires,
      expiresIn,
      scope: asString(body['scope']),
      status: asString(body['status']),
      memberId: asString(body['member_id']),
      clientEndpoint: asString(body['client_endpoint']),
      serverEndpoint: asString(body['server_endpoint']),
      userId: userId ?? null,
      domain: asString(body['domain']),
    };
  }

  /** POSTs a form and returns the parsed JSON object of a 2xx answer; classifies everything else. */
  async #post(url: string, form: URLSearchParams, timeoutMs = this.#timeoutMs): Promise<Record<string, unknown>> {
    let response: Response;
    try {
      response = await this.#fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      throw new OAuthUnavailableError(
        timedOut ? `OAuth host did not answer within ${timeoutMs} ms` : 'OAuth host could not be reached',
        0,
        { cause: error },
      );
    }
    const status = response.status;
    const transient = isTransientOAuthStatus(status);
    let bytes: Uint8Array | undefined | typeof TOO_LARGE;
    try {
      const body = response.body as ReadableStream<Uint8Array> | null;
      bytes = body === null ? undefined : await readBounded(body, MAX_OAUTH_ANSWER_BYTES);
    } catch (error) {
      if (transient) throw new OAuthUnavailableError(`OAuth host answered HTTP ${status}`, status, { cause: error });
      bytes = undefined; // an answer that broke off is judged by its status, like an empty one
    }
    if (transient) throw new OAuthUnavailableError(`OAuth host answered HTTP ${status}`, status);
    if (bytes === TOO_LARGE) throw new OAuthInvalidResponseError(`OAuth answer exceeds ${MAX_OAUTH_ANSWER_BYTES} bytes`);
    let parsed: unknown;
    try {
      parsed = bytes === undefined ? undefined : JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch {
      parsed = undefined;
    }
    const object =
      parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
    const errorValue = object?.['error'];
    if (errorValue !== undefined && errorValue !== null && errorValue !== '') {
      const errorString =
        typeof errorValue === 'object' ? sanitizeOAuthError((errorValue as Record<string, unknown>)['code']) : sanitizeOAuthError(errorValue);
      throw new OAuthRejectedError(errorString, status);
    }
    if (status < 200 || status >= 300) {
      // Redirects included: following one would send the secret somewhere not chosen by us.
      throw new OAuthInvalidResponseError(`OAuth host answered HTTP ${status} without an error`);
    }
    if (object === undefined) {
      throw new OAuthInvalidResponseError('OAuth host answered with a body that is not a JSON object');
    }
    return object;
  }
}

/**
 * Whether a failed proof is remembered: the host refused the token or code itself. Refusals of the
 * app's credentials and unpaid portals are not (they may clear at any moment), nor anything transient.
 */
function isRefusedClaim(error: unknown): boolean {
  if (!(error instanceof OAuthRejectedError)) return false;
  const kind = classifyOAuthError(error.oauthError);
  return kind === 'chain' || kind === 'request';
}
