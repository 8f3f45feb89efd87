// A complete Bitrix24 backend on plain node:http: lifecycle events in at POST /bitrix24/events,
// each portal's REST reachable at GET /portal/:memberId/profile. Run: B24_CLIENT_ID=… B24_CLIENT_SECRET=… tsx examples/node-http.ts

import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { createLifecycleHandler, toNodeHandler } from '../src/index.js';
import { configFromEnv, createPool, profileOf, runningExample, type ExampleConfig, type RunningExample } from './shared.js';

export async function start(config: ExampleConfig): Promise<RunningExample> {
  const pool = createPool(config);
  const events = toNodeHandler(
    createLifecycleHandler({ pool, ...(config.trustedOAuthHosts ? { trustedOAuthHosts: config.trustedOAuthHosts } : {}) }),
  );

  const server = createServer((req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    const profile = /^\/portal\/([^/]+)\/profile$/.exec(pathname);
    if (pathname === '/bitrix24/events') return events(req, res);
    if (profile?.[1] !== undefined && req.method === 'GET') {
      void profileOf(pool, decodeURIComponent(profile[1])).then(({ status, body }) => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"NOT_FOUND"}');
  });

  await new Promise<void>((resolve) => server.listen(config.port ?? 0, '127.0.0.1', resolve));
  return runningExample(server, pool);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = await start({ ...configFromEnv(), logger: pino() });
  console.log(`Listening on ${app.url}: POST /bitrix24/events, GET /portal/:memberId/profile`);
}
