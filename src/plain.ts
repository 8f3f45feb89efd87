// The framework-neutral request and response the handlers speak (the lifecycle handler, the
// authorization callback), and the small helpers every adapter shares to read them. Adapters only
// translate a runtime's objects to and from these shapes.

import { ErrorCode } from './errors.js';
import { observe } from './observe.js';

import { DEFAULT_MAX_BODY_BYTES } from './body.js';

export { DEFAULT_MAX_BODY_BYTES };

/** A JSON value, as the handlers put in a response body. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/**
 * Request headers: a Fetch `Headers` object or a record such as Node's `req.headers`.
 * Record keys are matched case-insensitively.
 * @inline
 */
export type HeaderBag = Headers | Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * A query string in any of the shapes runtimes hand out.
 * @inline
 */
export type QueryInput = URLSearchParams | string | Readonly<Record<string, string | readonly string[] | undefined>>;

/** A request in the shape the handlers take, whatever the HTTP framework. */
export interface PlainRequest {
  /** The HTTP method, any case. */
  readonly method: string;
  /** The request headers. */
  readonly headers: HeaderBag;
  /**
   * The body: raw (`string` or bytes, the usual case), or an object a framework's body parser
   * already produced (nested for `extended` urlencoded parsers, flat `auth[access_token]` keys
   * otherwise, or parsed JSON). `undefined` when there is none.
   */
  readonly body?: string | Uint8Array | URLSearchParams | Readonly<Record<string, unknown>> | undefined;
  /** The query string or its parsed form, when the handler needs one (the authorization callback does). */
  readonly query?: QueryInput | undefined;
}

/** A response in the shape the handlers return; adapters serialise `body` as JSON. */
export interface PlainResponse {
  /** The HTTP status. */
  readonly status: number;
  /** Response headers, lower-case names. `content-type` is set whenever there is a body. */
  readonly headers: Readonly<Record<string, string>>;
  /** The JSON body, or `undefined` for none (a redirect). */
  readonly body: JsonValue | undefined;
}

/**
 * A framework-neutral handler: a {@link PlainRequest} in, a {@link PlainResponse} out. It never
 * rejects: every failure is an answer. Mount it with `toNodeHandler` or `toFetchHandler`.
 * @inline
 */
export interface PlainHandler {
  /** Handles one request. */
  (request: PlainRequest): Promise<PlainResponse>;
  /**
   * The largest body the handler accepts, in bytes; adapters stop reading (and answer 413) beyond
   * it unless told otherwise.
   */
  readonly maxBodyBytes?: number | undefined;
}

/** Reads one header from either header shape; repeated values are joined with `, `. */
export function headerValue(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function' && typeof (headers as Headers).has === 'function') {
    return (headers as Headers).get(name) ?? undefined;
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  const lower = name.toLowerCase();
  let value = Object.prototype.hasOwnProperty.call(record, lower) ? record[lower] : undefined;
  if (value === undefined) {
    const key = Object.keys(record).find((candidate) => candidate.toLowerCase() === lower);
    value = key === undefined ? undefined : record[key];
  }
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.join(', ');
}

/** Reads one query parameter from any {@link QueryInput}; the first value wins when repeated. */
export function queryValue(query: QueryInput | undefined, name: string): string | undefined {
  if (query === undefined) return undefined;
  if (typeof query === 'string') {
    return new URLSearchParams(query.startsWith('?') ? query.slice(1) : query).get(name) ?? undefined;
  }
  if (query instanceof URLSearchParams) return query.get(name) ?? undefined;
  const value = Object.prototype.hasOwnProperty.call(query, name) ? query[name] : undefined;
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value[0];
}

/** A JSON response with the headers every answer of this library carries. */
export function jsonResponse(status: number, body: JsonValue, extraHeaders: Record<string, string> = {}): PlainResponse {
  observe(() => ({ kind: 'response', status, headers: extraHeaders, body }));
  return {
    status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      // Answers can describe a portal's state; no cache should keep them.
      'cache-control': 'no-store',
      ...extraHeaders,
    },
    body,
  };
}

/** The 413 answer, shared by the handlers and the adapters that stop reading early. */
export function payloadTooLargeResponse(): PlainResponse {
  return jsonResponse(413, { error: ErrorCode.PayloadTooLarge });
}

/** The 405 answer: `allow` names the one method served. */
export function methodNotAllowedResponse(allow: 'GET' | 'POST'): PlainResponse {
  return jsonResponse(405, { error: ErrorCode.MethodNotAllowed }, { allow });
}

/** The 500 answer for an unexpected failure inside a handler. */
export function internalErrorResponse(): PlainResponse {
  return jsonResponse(500, { error: ErrorCode.Internal });
}

/**
 * The body limit an adapter enforces: its own option, else the handler's `maxBodyBytes`, else
 * {@link DEFAULT_MAX_BODY_BYTES}.
 * @throws TypeError when the result is not a positive integer.
 */
export function adapterBodyLimit(handler: PlainHandler, override: number | undefined): number {
  const limit = override ?? handler.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(limit) || limit <= 0) throw new TypeError('options.maxBodyBytes must be a positive integer');
  return limit;
}
