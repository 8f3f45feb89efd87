// The same backend in Fastify: the neutral handler mounted in a few lines. Form bodies reach it as the
// raw string (a content-type parser), so the library's hardened parser does the decoding; with
// @fastify/formbody registered instead, the parsed object works just as well.
// Run: B24_CLIENT_ID=… B24_CLIENT_SECRET=… tsx examples/fastify.ts

import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import { pino } from 'pino';
import { createLifecycleHandler, type PlainRequest } from '../src/index.js';
import { configFromEnv, createPool, profileOf, type ExampleConfig, type RunningExample } from './shared.js';

export async function start(config: ExampleConfig): Promise<RunningExample> {
  const pool = createPool(config);
  const handler = createLifecycleHandler({ pool, ...(config.trustedOAuthHosts ? { trustedOAuthHosts: config.trustedOAuthHosts } : {}) });

  const app = Fastify({ bodyLimit: handler.maxBodyBytes });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.post('/bitrix24/events', async (request, reply) => {
    const answer = await handler({ method: request.method, headers: request.headers, body: request.body as PlainRequest['body'] });
    return reply.code(answer.status).headers(answer.headers).send(JSON.stringify(answer.body));
  });
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
