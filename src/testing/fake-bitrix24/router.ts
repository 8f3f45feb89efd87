// The stand-in's front door: one loopback HTTP server whose requests are read (bounded), decoded
// and routed to the OAuth host or to a portal.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mergeParams, readBody, sendJson } from './http.js';
import { handleOAuthAppInfo, handleToken } from './oauth-server.js';
import { handlePortal } from './portal-rest.js';
import type { StandIn } from './runtime.js';

/** Starts an HTTP server on an ephemeral loopback port; resolves with it and its port. */
export async function listenOnLoopback(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A deep accept queue: an expiry wave opens thousands of connections at once, and SYNs dropped
    // on a full queue are retried by TCP after 1, 3, 7 s..., which would time the kernel, not the code.
    server.listen({ port: 0, host: '127.0.0.1', backlog: 65_535 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}

/** Serves the stand-in's requests on `server`; an unexpected failure answers 500 (or drops the socket). */
export function serve(server: Server, s: StandIn): void {
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    route(s, req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: 'INTERNAL_SERVER_ERROR', error_description: 'Stand-in failure' });
      else res.destroy();
    });
  });
}

/** Closes the server and every open connection, hanging requests included. */
export async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

async function route(s: StandIn, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const requestUrl = new URL(req.url ?? '/', s.ledger.config.url);
  // The SDK joins `${clientEndpoint}/${method}`, giving `/rest//profile`; the real server copes.
  const path = requestUrl.pathname.replace(/\/{2,}/g, '/');
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'POST') {
    sendJson(res, 405, { error: 'METHOD_NOT_ALLOWED', error_description: 'Use GET or POST' });
    return;
  }
  const raw = await readBody(req);
  if (raw === null) {
    sendJson(res, 413, { error: 'REQUEST_TOO_LARGE', error_description: 'Request body too large' });
    return;
  }
  const params = mergeParams(requestUrl.searchParams, raw, req.headers['content-type']);
  if (params === null) {
    sendJson(res, 400, { error: 'invalid_request', error_description: 'Malformed request body' });
    return;
  }

  if (path === '/oauth/token/' || path === '/oauth/token') {
    await handleToken(s, req, res, params);
    return;
  }
  if (/^\/rest\/app\.info(\.json)?\/?$/.test(path)) {
    handleOAuthAppInfo(s, res, params);
    return;
  }
  const portalRoute = /^\/portals\/([^/]+)\/(.*)$/.exec(path);
  if (portalRoute !== null) {
    const domain = decodeURIComponent(portalRoute[1] ?? '').toLowerCase();
    await handlePortal(s, res, domain, portalRoute[2] ?? '', requestUrl, params, method);
    return;
  }
  sendJson(res, 404, { error: 'NOT_FOUND', error_description: 'No such route in the stand-in' });
}
