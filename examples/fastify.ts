// The same backend in Fastify: the lifecycle handler registered as a plugin (toFastifyPlugin). The
// plugin keeps raw bodies in its own context, so Bitrix24's form body reaches the library's hardened
// parser (a plain `app.post` route would get Fastify's 415), and the other routes parse JSON as usual.
// Run: B24_CLIENT_ID=… B24_CLIENT_SECRET=… tsx examples/fastify.ts

import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import { pino } from 'pino';
import { createLifecycleHandler, toFastifyPlugin } from '../src/index.js';
import { configFromEnv, createPool, profileOf, type ExampleConfig, type RunningExample } from './shared.js';

export async function start(config: ExampleConfig): Promise<RunningExample> {
  const pool = createPool(config);
  const handler = createLifecycleHandler({ pool, ...(config.trustedOAuthHosts ? { trustedOAuthHosts: config.trustedOAuthHosts } : {}) });

  const app = Fastify();
  await app.register(toFastifyPlugin(handler, { path: '/bitrix24/events' }));
  app.get<{ Params: { memberId: string } }>('/portal/:memberId/profile', async (request, reply) => {
    const { status, body } = await profileOf(pool, request.params.memberId);
    return reply.code(status).send(body);
  });

  await app.listen({ port: config.port ?? 0, host: '127.0.0.1' });
  const address = app.server.address();
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`,
    pool,
    async close() {
      await app.close();
      await pool.close();
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = await start({ ...configFromEnv(), logger: pino() });
  console.log(`Listening on ${app.url}: POST /bitrix24/events, GET /portal/:memberId/profile`);
}
