// The same backend in Express: mount the lifecycle handler before (or instead of) any body parser;
// it also copes with a body express.urlencoded() or express.json() already parsed.
// Run: B24_CLIENT_ID=… B24_CLIENT_SECRET=… tsx examples/express.ts

import { pathToFileURL } from 'node:url';
import express from 'express';
import { pino } from 'pino';
import { createLifecycleHandler, toNodeHandler } from '../src/index.js';
import { configFromEnv, createPool, profileOf, runningExample, type ExampleConfig, type RunningExample } from './shared.js';

export async function start(config: ExampleConfig): Promise<RunningExample> {
  const pool = createPool(config);
  const handler = createLifecycleHandler({ pool, ...(config.trustedOAuthHosts ? { trustedOAuthHosts: config.trustedOAuthHosts } : {}) });

  const app = express();
  app.post('/bitrix24/events', toNodeHandler(handler));
  app.get('/portal/:memberId/profile', async (req, res) => {
    const { status, body } = await profileOf(pool, req.params.memberId);
    res.status(status).json(body);
  });

  const server = app.listen(config.port ?? 0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  return runningExample(server, pool);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = await start({ ...configFromEnv(), logger: pino() });
  console.log(`Listening on ${app.url}: POST /bitrix24/events, GET /portal/:memberId/profile`);
}
