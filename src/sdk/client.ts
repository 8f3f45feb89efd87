// Building the SDK's B24OAuth for one chain, and the answer its refresh hook returns. The only
// module besides interceptors.ts that imports @bitrix24/b24jssdk (the stand-in in src/testing aside).

import { ApiVersion, B24OAuth, EnumAppStatus } from '@bitrix24/b24jssdk';
import type { B24OAuthParams, HandlerRefreshAuth, RestrictionParams } from '@bitrix24/b24jssdk';
import { ResponseTooLargeError } from '../errors/limits.js';
import type { PortalRecord } from '../store/token-store.js';
import type { ResolvedRestRootRules } from '../guard/rest-roots.js';

/** The largest answer a pooled client reads from a portal's REST root by default, bytes (8 MiB). */
export const DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

/**
 * What the SDK client is given as its refresh token. The pool owns every refresh, so the real
 * refresh token never lives inside the SDK; if anyone removes the pool's refresh hook, the SDK's
 * own refresh fails with `invalid_grant` instead of silently branching the chain.
 */
export const SDK_REFRESH_TOKEN_PLACEHOLDER = 'managed-by-b24-portal-tokens';

/** The app's credentials and the SDK options every client gets. */
export interface SdkClientSettings {
  /** The app's `client_id`. */
  readonly clientId: string;
  /** The app's `client_secret`. */
  readonly clientSecret: string;
  /** Passed to every client as its `restrictionParams`. */
  readonly restrictionParams?: Partial<RestrictionParams> | undefined;
  /** The largest answer a client reads, bytes. @defaultValue {@link DEFAULT_MAX_RESPONSE_BYTES} */
  readonly maxResponseBytes?: number | undefined;
  /** Which REST roots may receive a token (checked by the interceptors as each request leaves). */
  readonly restRoots?: ResolvedRestRootRules | undefined;
}

/**
 * Checks a `maxResponseBytes` option: a positive integer, or `undefined` for the default.
 * @throws TypeError naming `name` otherwise.
 */
export function resolveMaxResponseBytes(value: number | undefined, name = 'maxResponseBytes'): number {
  if (value === undefined) return DEFAULT_MAX_RESPONSE_BYTES;
  if (!Number.isSafeInteger(value) || value <= 0) throw new TypeError(`${name} must be a positive integer`);
  return value;
}

function sdkStatus(status: string): B24OAuthParams['status'] {
  const known = Object.values(EnumAppStatus) as string[];
  return (known.includes(status) ? status : EnumAppStatus.Local) as B24OAuthParams['status'];
}

/**
 * A `B24OAuth` for `record`, told its pair expires `shiftSec` early (the refresh-ahead window plus
 * the OAuth host's clock offset, so the SDK's machine-clock expiry check calls the refresh hook
 * ahead of time by the host's clock).
 */
export function createSdkClient(record: PortalRecord, shiftSec: number, settings: SdkClientSettings): B24OAuth {
  const params: B24OAuthParams = {
    applicationToken: record.applicationToken ?? '',
    userId: record.userId ?? 0,
    memberId: record.memberId,
    accessToken: record.accessToken,
    refreshToken: SDK_REFRESH_TOKEN_PLACEHOLDER,
    expires: record.expires - shiftSec,
    expiresIn: Math.max(1, record.expires - Math.floor(record.chainUpdatedAt / 1000)),
    scope: record.scope,
    domain: record.domain,
    clientEndpoint: record.clientEndpoint,
    serverEndpoint: record.serverEndpoint,
    status: sdkStatus(record.status),
  };
  const client = new B24OAuth(
    params,
    { clientId: settings.clientId, clientSecret: settings.clientSecret },
    settings.restrictionParams === undefined ? undefined : { restrictionParams: settings.restrictionParams },
  );
  capAnswers(client, resolveMaxResponseBytes(settings.maxResponseBytes), record.memberId);
  return client;
}

/** An axios error of an answer cut off at `maxContentLength`. */
function isTooLarge(error: unknown): boolean {
  const failure = error as { code?: unknown; message?: unknown } | null;
  return (
    failure !== null &&
    typeof failure === 'object' &&
    failure.code === 'ERR_BAD_RESPONSE' &&
    typeof failure.message === 'string' &&
    failure.message.startsWith('maxContentLength size of ')
  );
}

/**
 * Caps what each of the client's HTTP clients reads of an answer (axios stops reading and drops
 * the connection past `maxBytes`), and turns that failure into a {@link ResponseTooLargeError}.
 * The axios error is not kept as its cause: its config holds the request, token included.
 */
function capAnswers(client: B24OAuth, maxBytes: number, memberId: string): void {
  for (const version of [ApiVersion.v2, ApiVersion.v3]) {
    const axios = client.getHttpClient(version).ajaxClient;
    axios.defaults.maxContentLength = maxBytes;
    axios.interceptors.response.use(undefined, (error: unknown) => {
      if (isTooLarge(error)) throw new ResponseTooLargeError(maxBytes, { memberId });
      throw error;
    });
  }
}

/**
 * What the SDK's refresh hook returns for a persisted record (its real refresh token stays out),
 * its expiry shifted by `shiftSec` as in {@link createSdkClient}; `hostNowMs` is the host's time.
 */
export function refreshHookAnswer(record: PortalRecord, shiftSec: number, hostNowMs: number): HandlerRefreshAuth {
  return {
    access_token: record.accessToken,
    refresh_token: SDK_REFRESH_TOKEN_PLACEHOLDER,
    // The SDK parses these two with Number.parseInt (its types say string).
    expires: String(record.expires - shiftSec),
    expires_in: String(Math.max(1, record.expires - Math.floor(hostNowMs / 1000))),
    client_endpoint: record.clientEndpoint,
    server_endpoint: record.serverEndpoint,
    member_id: record.memberId,
    scope: record.scope,
    status: sdkStatus(record.status),
    domain: record.domain,
  };
}
