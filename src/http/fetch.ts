// toFetchHandler: mounts a PlainHandler wherever requests are Fetch `Request`s and answers are
// `Response`s (Hono, Next.js route handlers, Bun, Deno, workers). Reads the body up to a limit.

import { announcedTooLarge, readBounded, TOO_LARGE } from '../body.js';
import { observe } from '../observe.js';
import { adapterFor, unwrappedMountError } from './mount-guard.js';
import { adapterBodyLimit, payloadTooLargeResponse, type PlainHandler, type PlainResponse } from '../plain.js';

/**
 * Options of {@link toFetchHandler}.
 * @inline
 */
export interface FetchHandlerOptions {
  /**
   * The largest body read, in bytes; reading stops (the stream is cancelled) as soon as it is
   * passed, or at once when `content-length` announces more, and the answer is 413.
   * @defaultValue the handler's own `maxBodyBytes`, else 65536
   */
  readonly maxBodyBytes?: number | undefined;
}

/**
 * A Fetch-style request handler.
 * @inline
 */
export type FetchRequestHandler = (request: Request) => Promise<Response>;

/**
 * Adapts a handler (such as the one from `createLifecycleHandler`) to the Fetch API.
 *
 * @example
 * ```ts
 * // Next.js app/bitrix24/events/route.ts
 * export const POST = toFetchHandler(createLifecycleHandler({ pool }));
 * // Bun
 * Bun.serve({ fetch: toFetchHandler(handler) });
 * ```
 */
export function toFetchHandler(handler: PlainHandler, options: FetchHandlerOptions = {}): FetchRequestHandler {
  if (typeof handler !== 'function') throw new TypeError('handler must be a function');
  const limit = adapterBodyLimit(handler, options.maxBodyBytes);

  const fetchHandler = async (request: Request): Promise<Response> => {
    const body = await readBody(request, limit);
    if (body === TOO_LARGE) return toResponse(payloadTooLargeResponse());
    const response = await handler({
      method: request.method,
      headers: request.headers,
      body,
      query: new URL(request.url).searchParams,
    });
    return toResponse(response);
  };
  // Mounted in node:http or Express by mistake: say so at once rather than fail on `headers.get`.
  return function (this: unknown, request: Request, ...rest: unknown[]): Promise<Response> {
    const adapter = adapterFor(request, rest[0]);
    if (adapter !== undefined) throw unwrappedMountError('A toFetchHandler() handler', adapter);
    return fetchHandler(request);
  };
}

async function readBody(request: Request, limit: number): Promise<Uint8Array | undefined | typeof TOO_LARGE> {
  if (announcedTooLarge(request.headers.get('content-length'), limit)) {
    await request.body?.cancel().catch(() => undefined);
    return TOO_LARGE;
  }
  if (request.body === null) return undefined;
  // A request body stream yields bytes; the DOM typings leave the chunk type open.
  return readBounded(request.body as ReadableStream<Uint8Array>, limit);
}

function toResponse(response: PlainResponse): Response {
  observe(() => ({ kind: 'response', status: response.status, headers: response.headers, body: response.body }));
  const body = response.body === undefined ? null : JSON.stringify(response.body);
  return new Response(body, { status: response.status, headers: response.headers });
}
