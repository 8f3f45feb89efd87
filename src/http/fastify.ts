// toFastifyPlugin: mounts a PlainHandler in Fastify. Fastify parses bodies before a route runs and
// answers 415 for a form body it has no parser for, so the plugin registers, in its own
// encapsulated context, one parser that keeps every body as raw bytes for the handler to decode.
// Typed structurally: the package does not depend on fastify.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { observe } from '../observe.js';
import { adapterBodyLimit, payloadTooLargeResponse, type PlainHandler, type PlainResponse } from '../plain.js';

/** Options of {@link toFastifyPlugin}. @inline */
export interface FastifyPluginOptions {
  /**
   * The route's path inside the plugin's prefix (`app.register(plugin, { prefix })` works too).
   * @defaultValue `'/'`
   */
  readonly path?: string | undefined;
  /**
   * The largest body read, in bytes; larger ones get the handler's 413 answer.
   * @defaultValue the handler's own `maxBodyBytes`, else 65536
   */
  readonly maxBodyBytes?: number | undefined;
}

/** The part of a Fastify request the plugin reads. @inline */
export interface FastifyRequestLike {
  /** The HTTP method. */
  readonly method: string;
  /** Node's request: its headers and URL. */
  readonly raw: IncomingMessage;
  /** The raw body the plugin's parser kept. */
  readonly body: unknown;
}

/** The part of a Fastify reply the plugin writes. @inline */
export interface FastifyReplyLike {
  /** Sets the status. */
  code(statusCode: number): FastifyReplyLike;
  /** Sets one header. */
  header(name: string, value: string): FastifyReplyLike;
  /** Sends the payload. */
  send(payload?: string): FastifyReplyLike;
  /** Node's response. */
  readonly raw: ServerResponse;
}

/** The part of a Fastify instance the plugin uses (Fastify 4 and 5 have it). @inline */
export interface FastifyInstanceLike {
  /** Drops the inherited body parsers, in this plugin's context only. */
  removeAllContentTypeParsers(): void;
  /** Registers the plugin's raw-body parser. */
  addContentTypeParser(
    contentType: string,
    options: { parseAs: 'buffer'; bodyLimit: number },
    parser: (request: unknown, body: Buffer, done: (error: Error | null, body?: Buffer) => void) => void,
  ): void;
  /** Answers Fastify's own refusals (a body over the limit) the handler's way. */
  setErrorHandler(handler: (error: Error & { statusCode?: number }, request: FastifyRequestLike, reply: FastifyReplyLike) => unknown): void;
  /** Registers the route for every method (the handler answers 405 itself). */
  all(path: string, handler: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>): void;
}

/** A Fastify plugin, for `app.register(...)`. @inline */
export type FastifyPlugin = (instance: FastifyInstanceLike, options: unknown) => Promise<void>;

function send(reply: FastifyReplyLike, response: PlainResponse): FastifyReplyLike {
  observe(() => ({ kind: 'response', status: response.status, headers: response.headers, body: response.body }));
  reply.code(response.status);
  for (const [name, value] of Object.entries(response.headers)) reply.header(name, value);
  return response.body === undefined ? reply.send() : reply.send(JSON.stringify(response.body));
}

/**
 * Adapts a handler (such as the one from `createLifecycleHandler`) to Fastify, as a plugin that
 * serves one route. Register it without `fastify-plugin`: its raw-body parser must stay inside its
 * own context, so the app's other routes keep Fastify's JSON parsing.
 *
 * @example
 * ```ts
 * const app = Fastify();
 * await app.register(toFastifyPlugin(createLifecycleHandler({ pool }), { path: '/bitrix24/events' }));
 * ```
 */
export function toFastifyPlugin(handler: PlainHandler, options: FastifyPluginOptions = {}): FastifyPlugin {
  if (typeof handler !== 'function') throw new TypeError('handler must be a function');
  const limit = adapterBodyLimit(handler, options.maxBodyBytes);
  const path = options.path ?? '/';
  if (typeof path !== 'string' || !path.startsWith('/')) throw new TypeError("options.path must start with '/'");

  return (instance) => {
    instance.removeAllContentTypeParsers();
    instance.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limit }, (_request, body, done) => done(null, body));
    instance.setErrorHandler((error, _request, reply) => {
      // Fastify refuses an oversized body before the route runs: answer it as the handler would.
      if (error.statusCode === 413) return send(reply, payloadTooLargeResponse());
      throw error; // anything else: the app's own error handler
    });
    instance.all(path, async (request, reply) => {
      const body = request.body instanceof Uint8Array && request.body.byteLength > 0 ? request.body : undefined;
      const query = new URL(request.raw.url ?? '/', 'http://localhost').searchParams;
      const response = await handler({ method: request.method, headers: request.raw.headers, body, query });
      return send(reply, response);
    });
    return Promise.resolve();
  };
}
