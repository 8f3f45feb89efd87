// Counters of the stand-in Bitrix24: every decision it makes is counted.

/** Counters of {@link FakeBitrix24.stats}, updated before each response is written. */
export interface FakeBitrix24Stats {
  /** `grant_type=refresh_token` requests that arrived, injected failures included. */
  refreshRequests: number;
  /** Refresh requests answered with a new pair. */
  refreshSuccess: number;
  /** Refresh requests that presented an already spent refresh token (the chain branched). */
  refreshReuse: number;
  /** Refused refresh requests by `error` code (`invalid_grant`, `invalid_client`, `NOT_INSTALLED`, …). */
  refreshErrors: Record<string, number>;
  /** `grant_type=authorization_code` requests that arrived, injected failures included. */
  codeExchanges: number;
  /** Code exchanges answered with a new pair. */
  codeSuccess: number;
  /** Refused code exchanges by `error` code. */
  codeErrors: Record<string, number>;
  /** Token requests with a missing or unknown `grant_type`. */
  badTokenRequests: number;
  /** Token requests answered with an injected failure (see {@link FakeBitrix24.failOAuth}). */
  oauthFailuresInjected: number;
  /** Calls of the OAuth host's `app.info`. */
  appInfoCalls: number;
  /** Portal REST answers by kind. */
  rest: {
    /** Successful answers. */
    ok: number;
    /** 401 `expired_token`. */
    expiredToken: number;
    /** 401 `invalid_token`. */
    invalidToken: number;
    /** Every other error (`NO_AUTH_FOUND`, `ERROR_OAUTH`, unknown method, unknown portal, …). */
    otherErrors: number;
    /** 302 answers of a renamed portal's old address. */
    redirects: number;
    /** 503 `QUERY_LIMIT_EXCEEDED` answers of a full bucket (see {@link FakeBitrix24.limitRequests}). */
    queryLimitExceeded: number;
    /** 429 `OPERATION_TIME_LIMIT` answers of a method whose operating time is spent (see {@link FakeBitrix24.exhaustOperatingTime}). */
    operationTimeLimit: number;
  };
  /** Portal REST requests by method name (lower case, v2 and v3 together), whatever the answer. */
  restByMethod: Record<string, number>;
}


export function emptyStats(): FakeBitrix24Stats {
  return {
    refreshRequests: 0,
    refreshSuccess: 0,
    refreshReuse: 0,
    refreshErrors: {},
    codeExchanges: 0,
    codeSuccess: 0,
    codeErrors: {},
    badTokenRequests: 0,
    oauthFailuresInjected: 0,
    appInfoCalls: 0,
    rest: { ok: 0, expiredToken: 0, invalidToken: 0, otherErrors: 0, redirects: 0, queryLimitExceeded: 0, operationTimeLimit: 0 },
    restByMethod: {},
  };
}
