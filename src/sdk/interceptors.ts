// Axios interceptors on each SDK HTTP client (v2 and v3) of a chain's B24OAuth:
// - every request leaves with the chain's current token (the SDK picks the token before its rate
//   limiter makes the request wait) and, while a refresh of the chain is in flight or a newer
//   record the store's change feed announced is being read, waits for it;
// - a 401 for a token the chain has already moved past is re-sent with the current one; a 401 for
//   the current token asks the coordinator first;
// - a 3xx from a renamed portal is re-sent to the new address rather than followed as a GET;
// - a request that carries a token leaves only for a REST root the configuration allows
//   (`restRoots`), checked here, as it is sent, whatever the stored `clientEndpoint` says.

import type { TypeHttp } from '@bitrix24/b24jssdk';
import { restErrorCode } from '../protocol/rest-errors.js';
import type { PortalRecord } from '../store/token-store.js';
import { checkRestRoot, resolveRestRootRules, type ResolvedRestRootRules } from '../guard/rest-roots.js';
import { restMethodOf, type ProbeFlags, type RequestBudget, type RequestOutcome } from '../budget/budget.js';

/** What the interceptors need from the chain they serve. */
export interface InterceptedChain {
  /** The newest persisted record this process knows for the chain. */
  readonly record: PortalRecord;
  /**
   * Waits for a newer record the store's change feed announced to be read (if one is on its way),
   * then for a refresh of this chain in flight in this process (if any), and takes their outcome.
   */
  settleFlight(): Promise<void>;
  /**
   * The read of a newer record the store's change feed announced, while it is on its way (never
   * rejects); `undefined` when none is.
   */
  announced?(): Promise<void> | undefined;
  /** Asks the coordinator for a pair other than `rejectedToken`. */
  replaceRejected(rejectedToken: string): Promise<PortalRecord>;
  /**
   * Re-reads the chain from the store after the portal refused its current token for a reason
   * other than expiry; throws the library's typed error when the chain is gone or revoked.
   */
  recheck(): Promise<PortalRecord>;
  /** Remembers a token the portal refused while it was current (the SDK's refresh hook reads it). */
  markRejected(token: string): void;
  /** Stores a portal's move; resolves the URL to re-send to, or `undefined` to refuse the move. */
  move(requestUrl: string | undefined, location: string): Promise<string | undefined>;
  /** Counts a re-sent request. */
  countResend(): void;
  /** The portal's request budget, when the pool keeps one (see budget.ts). */
  readonly budget?: RequestBudget | undefined;
}

/** The axios request config fields touched here; structural, so axios stays the SDK's business. */
interface StampedConfig {
  data?: unknown;
  url?: string;
  maxRedirects?: number;
  [SENT_TOKEN]?: string;
  [MOVED]?: boolean;
  [ORIGINAL_DATA]?: Record<string, unknown>;
  [RESENDS]?: number;
  [PROBE]?: ProbeFlags;
  [LIMIT_RETRIES]?: number;
}

interface AxiosFailure {
  response?: { status?: number; data?: unknown; headers?: Record<string, unknown> };
  config?: StampedConfig;
}

const SENT_TOKEN = Symbol('b24pt.sentToken');
const ORIGINAL_DATA = Symbol('b24pt.originalData');
const RESENDS = Symbol('b24pt.resends');
const MOVED = Symbol('b24pt.moved');
const PROBE = Symbol('b24pt.probe');
const LIMIT_RETRIES = Symbol('b24pt.limitRetries');
/** A request answered 503 QUERY_LIMIT_EXCEEDED or 429 OPERATION_TIME_LIMIT is re-sent (after the pushed-back wait) at most this many times. */
const MAX_LIMIT_RETRIES = 3;
/** A request is re-sent at most this many times for superseded tokens. */
const MAX_RESENDS = 2;
/** A token the portal refused because the chain moved on (a refresh) or lapsed. */
const SUPERSEDED = new Set(['expired_token', 'invalid_token']);
/**
 * A token refused because the app may be gone from the portal: the store knows first
 * (docs/protocol.md, "Portal REST errors").
 */
const RECHECK = new Set(['ERROR_OAUTH', 'NO_AUTH_FOUND', 'APPLICATION_NOT_FOUND']);

const DEFAULT_REST_ROOTS = resolveRestRootRules(undefined);

/** Installs the interceptors on one SDK HTTP client; `restRoots` says where a token may go. */
export function interceptHttpClient(http: TypeHttp, chain: InterceptedChain, restRoots: ResolvedRestRootRules = DEFAULT_REST_ROOTS): void {
  const axios = http.ajaxClient;
  axios.interceptors.request.use(async (config) => {
    const stamped = config as unknown as StampedConfig;
    const data = stamped[ORIGINAL_DATA] ?? stamped.data;
    const carriesToken = data !== null && typeof data === 'object' && typeof (data as { auth?: unknown }).auth === 'string';
    // Before anything else (the budget included): a refused request is never sent and costs nothing.
    if (carriesToken) checkRestRoot(stamped.url, chain.record, restRoots);
    // The budget first: the token is stamped after the wait, so it is the current one when the request leaves.
    if (chain.budget !== undefined) stamped[PROBE] = await chain.budget.beforeRequest(chain.record.memberId, restMethodOf(stamped.url));
    if (carriesToken) {
      // A request leaving while a refresh is in flight would carry the token that refresh is about
      // to kill: hold it until the new pair is persisted.
      await chain.settleFlight();
      const original = data as Record<string, unknown>;
      stamped[ORIGINAL_DATA] = original;
      stamped[SENT_TOKEN] = chain.record.accessToken;
      stamped.maxRedirects = 0;
      stamped.data = { ...original, auth: chain.record.accessToken };
    }
    return config;
  });
  axios.interceptors.response.use(
    (response: { config?: unknown; data?: unknown }) => {
      const budget = chain.budget;
      const config = response.config as StampedConfig | undefined;
      if (budget !== undefined && config !== undefined) {
        const memberId = chain.record.memberId;
        const method = restMethodOf(config.url);
        budget.settle(memberId, method, takeProbe(config), 'ok');
        // Best effort: a store hiccup here must not fail a call that succeeded.
        if (method !== undefined) void budget.recordAnswer(memberId, method, response.data).catch(() => undefined);
      }
      return response as never;
    },
    async (error: unknown) => {
    try {
      return await recover(error);
    } catch (thrown) {
      // Whatever leaves here reaches the caller (wrapped by the SDK): no token may ride along.
      scrub(thrown);
      throw thrown;
    }
  });

  async function recover(error: unknown): Promise<unknown> {
    const failure = error as AxiosFailure;
    const config = failure.config;
    const sent = config?.[SENT_TOKEN];
    const status = failure.response?.status ?? 0;
    const budget = chain.budget;
    if (budget !== undefined && config !== undefined) {
      const data = failure.response?.data;
      const code = restErrorCode(data) ?? '';
      const method = restMethodOf(config.url);
      const rate = status === 503 || code === 'QUERY_LIMIT_EXCEEDED';
      const operating = !rate && (code === 'OPERATION_TIME_LIMIT' || status === 429);
      const outcome: RequestOutcome = failure.response === undefined ? 'no-answer' : rate ? 'query-limit' : operating ? 'operation-time-limit' : 'ok';
      budget.settle(chain.record.memberId, method, takeProbe(config), outcome);
      // Every worker holds back (the portal's budget, or this method's account), then it is re-sent.
      let held = true;
      if (code === 'QUERY_LIMIT_EXCEEDED') await budget.pushBack(chain.record.memberId, method);
      else if (operating && method !== undefined) await budget.operationTimeLimited(chain.record.memberId, method, data);
      else held = false;
      if (held) {
        const retries = config[LIMIT_RETRIES] ?? 0;
        if (retries < MAX_LIMIT_RETRIES) {
          config[LIMIT_RETRIES] = retries + 1;
          return axios.request(config);
        }
        throw error;
      }
    }
    if (config === undefined || sent === undefined) throw error;
    if (status >= 300 && status < 400 && config[MOVED] !== true) {
      const location = failure.response?.headers?.['location'];
      const url = typeof location === 'string' ? await chain.move(config.url, location) : undefined;
      if (url === undefined) throw error;
      config[MOVED] = true;
      config.url = url;
      return axios.request(config);
    }
    const code = restErrorCode(failure.response?.data) ?? '';
    const superseded = SUPERSEDED.has(code);
    if (status !== 401 || (!superseded && !RECHECK.has(code))) throw error;
    const resends = config[RESENDS] ?? 0;
    if (resends >= MAX_RESENDS) {
      if (superseded) chain.markRejected(sent);
      throw error;
    }
    // Another worker's write the feed announced may be on its way here: a 401 for the token it
    // replaced is then re-sent with the new one, without asking the coordinator.
    const announced = chain.announced?.();
    if (announced !== undefined) await announced;
    let current = chain.record;
    if (current.accessToken === sent) {
      // The current token itself was refused: the coordinator decides between adopting and
      // refreshing; for an app that may be gone, the store is asked first.
      current = superseded ? await chain.replaceRejected(sent) : await chain.recheck();
    }
    if (current.accessToken === sent) throw error;
    config[RESENDS] = resends + 1;
    chain.countResend();
    return axios.request(config);
  }
}

/** The probe flags a request left with (cleared: a re-send is no probe until its gate says so). */
function takeProbe(config: StampedConfig): ProbeFlags {
  const probe = config[PROBE] ?? { portal: false, method: false };
  delete config[PROBE];
  return probe;
}

const REDACTED = '[redacted]';
const AUTH_IN_JSON = /("auth"\s*:\s*)"(?:[^"\\]|\\.)*"/g;

/**
 * Removes the access token from a failed request's config before the error reaches the caller:
 * the SDK keeps axios' error (config, body, symbols of ours) in its own error, where error
 * reporters that walk every property would find it.
 */
function scrub(error: unknown): void {
  if (error === null || typeof error !== 'object') return;
  const failure = error as AxiosFailure & { response?: { config?: StampedConfig } };
  for (const config of [failure.config, failure.response?.config]) {
    if (config === undefined || config === null) continue;
    delete config[ORIGINAL_DATA];
    delete config[SENT_TOKEN];
    const data = config.data;
    if (typeof data === 'string') config.data = data.replace(AUTH_IN_JSON, `$1"${REDACTED}"`);
    else if (data !== null && typeof data === 'object' && 'auth' in data) config.data = { ...(data as object), auth: REDACTED };
  }
}
