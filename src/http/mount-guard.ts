// The guard every framework-neutral handler wears: called with a runtime's own request objects
// (the handler mounted in Express or Fastify without its adapter) it throws at once, saying which
// adapter wraps it, instead of returning an answer nobody sends while the request hangs.

import type { Logger } from '../logger.js';
import type { PlainRequest, PlainResponse } from '../plain.js';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Node's `ServerResponse` (or anything that answers like one). */
function isNodeResponse(value: unknown): boolean {
  return isObject(value) && typeof value['writeHead'] === 'function' && typeof value['setHeader'] === 'function';
}

/** Node's `IncomingMessage`: a readable stream on a socket. */
function isNodeRequest(value: unknown): boolean {
  return isObject(value) && typeof value['pipe'] === 'function' && isObject(value['socket']);
}

/**
 * Which adapter the arguments of a call call for, or `undefined` when they are a plain request:
 * Node's request (a second argument that answers like a `ServerResponse`, as `node:http` and
 * Express pass) or Fastify's (its `request.raw` and `reply.raw`).
 */
export function adapterFor(request: unknown, second: unknown): 'toNodeHandler' | 'toFastifyPlugin' | undefined {
  if (isNodeRequest(request) || isNodeResponse(second)) return 'toNodeHandler';
  if (isObject(request) && isObject(second) && (isNodeRequest(request['raw']) || isNodeResponse(second['raw']))) return 'toFastifyPlugin';
  return undefined;
}

/** The error for a handler called with a runtime's own objects; the text says how to mount it. */
export function unwrappedMountError(what: string, adapter: 'toNodeHandler' | 'toFastifyPlugin'): TypeError {
  const how =
    adapter === 'toNodeHandler'
      ? 'mount it as toNodeHandler(handler) in node:http or Express (app.post(path, toNodeHandler(handler)))'
      : 'register it with app.register(toFastifyPlugin(handler, { path }))';
  return new TypeError(
    `${what} was called with ${adapter === 'toNodeHandler' ? "Node's" : "Fastify's"} request and response, which it cannot answer: ${how} (toFetchHandler(handler) serves Fetch runtimes)`,
  );
}

/**
 * Wraps a neutral handler so that a call with Node's or Fastify's request objects throws a
 * TypeError synchronously (Express and Fastify answer 500) and logs it once, instead of hanging.
 */
export function guardMount<H extends (request: PlainRequest) => Promise<PlainResponse>>(handler: H, what: string, logger: Logger): H {
  let logged = false;
  const guarded = function (this: unknown, request: PlainRequest, ...rest: unknown[]): Promise<PlainResponse> {
    const adapter = adapterFor(request, rest[0]);
    if (adapter !== undefined) {
      const error = unwrappedMountError(what, adapter);
      if (!logged) {
        logged = true;
        logger.error({ adapter }, error.message);
      }
      throw error;
    }
    return handler(request);
  };
  return guarded as H;
}
