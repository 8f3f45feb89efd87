// toNodeHandler: mounts a PlainHandler in node:http or Express. It reads the raw body up to a limit
// (answering 413 as soon as the limit is passed), or takes the body an Express parser already produced.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { announcedTooLarge, readBounded, TOO_LARGE } from '../body.js';
import { observe } from '../observe.js';
import { adapterBodyLimit, internalErrorResponse, payloadTooLargeResponse, type PlainHandler, type PlainRequest, type PlainResponse } from '../plain.js';

/**
 * Options of {@link toNodeHandler}.
 * @inline
 */
export interface NodeHandlerOptions {
  /**
   * The largest raw body read, in bytes. Reading stops as soon as it is passed (or at once when
   * `content-length` announces more) and the answer is 413 with `connection: close`.
   * @defaultValue the handler's own `maxBodyBytes`, else 65536
   */
  readonly maxBodyBytes?: number | undefined;
}

/**
 * A `(req, res, next?)` function for `http.createServer`, an Express app or router, or anything
 * else that passes Node's request and response. It never throws and never leaves a request
 * unanswered; `next` (Express) only receives failures of the response itself.
 * @inline
 */
export type NodeRequestHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

/** Express and similar frameworks put a parsed body here. */
interface MaybeParsedRequest extends IncomingMessage {
  body?: unknown;
}

/**
 * Adapts a handler (such as the one from `createLifecycleHandler`) to Node's `http` API and to
 * Express.
 *
 * The body: when a framework's body parser already consumed the stream, `req.body` is used as it
 * is: a `Buffer` or string (`express.raw()`, `express.text()`), a nested object
 * (`express.urlencoded({ extended: true })`), a flat object with `auth[access_token]`-style keys
 * (`extended: false`), or parsed JSON (`express.json()`). Otherwise the raw body is read here, up to
 * `maxBodyBytes`. Mounting it before any body parser is simplest.
 *
 * @example
 * ```ts
 * http.createServer(toNodeHandler(handler)).listen(3000);
 * // or, in Express:
 * app.post('/bitrix24/events', toNodeHandler(handler));
 * ```
 */
export function toNodeHandler(handler: PlainHandler, options: NodeHandlerOptions = {}): NodeRequestHandler {
  if (typeof handler !== 'function') throw new TypeError('handler must be a function');
  const limit = adapterBodyLimit(handler, options.maxBodyBytes);

  return (req, res, next) => {
    // A Fetch `Request` (a route handler of Next.js, Hono, Bun) has no socket and no response beside it.
    if (isFetchRequest(req)) throw fetchRequestError();
    serve(handler, limit, req as MaybeParsedRequest, res).catch((error: unknown) => {
      if (next !== undefined) {
        next(error);
      } else if (!res.headersSent) {
        send(res, internalErrorResponse());
      } else {
        res.destroy();
      }
    });
  };
}

async function serve(handler: PlainHandler, limit: number, req: MaybeParsedRequest, res: ServerResponse): Promise<void> {
  let body: PlainRequest['body'];
  if (req.body !== undefined && req.body !== null && !(isEmptyObject(req.body) && !req.readableEnded)) {
    body = adoptParsedBody(req.body);
  } else if (!req.readableEnded) {
    const read = announcedTooLarge(req.headers['content-length'], limit)
      ? TOO_LARGE
      : // Left unread beyond the limit rather than destroyed: the socket must carry the 413 back.
        await readBounded(req as AsyncIterable<Uint8Array>, limit, { cancel: false });
    if (read === TOO_LARGE) {
      // Node closes the connection once this answer is flushed; the rest of the body is read and
      // dropped meanwhile (bounded), because closing a socket with unread bytes resets it and the
      // sender would see ECONNRESET instead of the 413.
      send(res, payloadTooLargeResponse(), { connection: 'close' });
      discardRest(req, limit);
      return;
    }
    body = read;
  }
  const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
  const response = await handler({ method: req.method ?? 'GET', headers: req.headers, body, query });
  send(res, response);
}

/** Reads past the limit what a too-large body still sends, up to 4 times the limit or 2 s, then cuts the connection. */
function discardRest(req: IncomingMessage, limit: number): void {
  let left = 4 * Math.max(limit, 64 * 1024);
  const cut = setTimeout(() => req.destroy(), 2_000);
  cut.unref();
  const done = (): void => clearTimeout(cut);
  req.on('data', (chunk: Uint8Array) => {
    left -= chunk.byteLength;
    if (left < 0) {
      done();
      req.destroy();
    }
  });
  req.once('end', done);
  req.once('close', done);
  req.once('error', done);
  req.resume();
}

function isFetchRequest(value: unknown): boolean {
  return typeof Request === 'function' && value instanceof Request;
}

function fetchRequestError(): TypeError {
  return new TypeError('A toNodeHandler() handler was called with a Fetch Request, which it cannot answer: use toFetchHandler(handler) there');
}

/**
 * Express 4's parsers set `req.body = {}` even for a content type they skipped, leaving the stream
 * unread: such a placeholder is not a parsed body.
 */
function isEmptyObject(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    !(value instanceof Uint8Array) &&
    !(value instanceof URLSearchParams) &&
    Object.keys(value).length === 0
  );
}

/** The shapes a framework's parser leaves in `req.body`, as the handler takes them. */
function adoptParsedBody(value: unknown): PlainRequest['body'] {
  if (typeof value === 'string' || value instanceof Uint8Array) return value;
  if (value instanceof URLSearchParams) return value;
  if (typeof value === 'object' && value !== null) return value as Readonly<Record<string, unknown>>;
  // A number or boolean (`express.json({ strict: false })`) is no event; let the parser say so.
  return JSON.stringify(value);
}

function send(res: ServerResponse, response: PlainResponse, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent || res.writableEnded) return;
  const payload = response.body === undefined ? undefined : Buffer.from(JSON.stringify(response.body), 'utf8');
  res.statusCode = response.status;
  observe(() => ({ kind: 'response', status: response.status, headers: { ...response.headers, ...extraHeaders }, body: response.body }));
  for (const [name, value] of Object.entries({ ...response.headers, ...extraHeaders })) res.setHeader(name, value);
  // Bytes, not characters: a multi-byte character in a body must not truncate it.
  res.setHeader('content-length', payload === undefined ? 0 : payload.byteLength);
  res.end(payload);
}
