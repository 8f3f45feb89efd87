// A Bitrix24 backend that handles a REST event next to the lifecycle events, on one URL: POST /bitrix24/events
// takes ONAPPINSTALL/ONAPPUPDATE/ONAPPUNINSTALL (lifecycle handler) and ONCRMDEALADD (bound with event.bind).
// Each new deal is re-read through the portal's own client (the event's data is only a claim) and kept;
// GET /portal/:memberId/deals lists them. Run: B24_CLIENT_ID=… B24_CLIENT_SECRET=… tsx examples/events.ts

import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { createEventHandler, createLifecycleHandler, toNodeHandler } from '../src/index.js';
import { configFromEnv, createPool, runningExample, type ExampleConfig, type RunningExample } from './shared.js';

export async function start(config: ExampleConfig): Promise<RunningExample> {
  const pool = createPool(config);
  const trusted = config.trustedOAuthHosts ? { trustedOAuthHosts: config.trustedOAuthHosts } : {};
  const deals = new Map<string, { id: string; title: string }[]>(); // your database, per portal

  const events = toNodeHandler(
    createEventHandler({
      pool,
      lifecycle: createLifecycleHandler({ pool, ...trusted }),
      on: {
        ONCRMDEALADD: async ({ memberId, data, b24 }) => {
          const id = (data['FIELDS'] as { ID?: unknown } | undefined)?.ID;
          if (typeof id !== 'string' || !/^\d+$/.test(id)) return; // not a deal id: nothing to look up
          // Re-read the deal with the portal's client instead of trusting the event's data.
          const answer = await b24.actions.v2.call.make<{ ID: string; TITLE: string }>({ method: 'crm.deal.get', params: { id } });
          const deal = answer.getData()?.result;
          if (deal !== undefined) deals.set(memberId, [...(deals.get(memberId) ?? []), { id: deal.ID, title: deal.TITLE }]);
        },
      },
    }),
  );

  const server = createServer((req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    if (pathname === '/bitrix24/events') return events(req, res);
    const list = /^\/portal\/([^/]+)\/deals$/.exec(pathname);
    if (list?.[1] !== undefined && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(deals.get(decodeURIComponent(list[1])) ?? []));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"NOT_FOUND"}');
  });

  await new Promise<void>((resolve) => server.listen(config.port ?? 0, '127.0.0.1', resolve));
  return runningExample(server, pool);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = await start({ ...configFromEnv(), logger: pino() });
  console.log(`Listening on ${app.url}: POST /bitrix24/events, GET /portal/:memberId/deals`);
}
