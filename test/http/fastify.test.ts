// toFastifyPlugin in a real Fastify app over loopback: the obvious mounting (a route handing
// Fastify's request to the handler) answers 415 to Bitrix24's form body, because Fastify parses
// bodies first; the plugin keeps raw bodies in its own context, so form and JSON events, the 405,
// the 413 and the 415 are the handler's answers, and the app's other routes still parse JSON.
import formbody from '@fastify/formbody';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toFastifyPlugin } from '../../src/http/fastify.js';
import { createLifecycleHandler, type LifecycleHandler } from '../../src/http/handler.js';
import { startRig, type Rig } from './helpers.js';

let rig: Rig;
let handler: LifecycleHandler;
let app: FastifyInstance;
let url: string;

beforeEach(async () => {
  rig = await startRig();
  handler = createLifecycleHandler({ pool: rig.context, trustedOAuthHosts: [rig.b24.oauthUrl], maxBodyBytes: 8192 });
  app = Fastify();
  await app.register(toFastifyPlugin(handler, { path: '/bitrix24/events' })); // as the docs show it
  app.post('/json', (request) => Promise.resolve({ echoed: request.body }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
});
afterEach(async () => {
  await app.close();
  await rig.pool.close();
  await rig.b24.close();
});

const post = (path: string, contentType: string, body: string) =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });

describe('toFastifyPlugin', () => {
  it('stores an install sent as a form, as Bitrix24 sends it', async () => {
    const portal = rig.b24.addPortal();
    const answer = await post('/bitrix24/events', 'application/x-www-form-urlencoded', rig.b24.installEvent(portal.memberId).form);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ ok: true });
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await rig.store.get(portal.memberId)).toMatchObject({ memberId: portal.memberId, state: 'active' });
  });

  it('takes a JSON event too', async () => {
    const portal = rig.b24.addPortal();
    const answer = await post('/bitrix24/events', 'application/json', rig.b24.installEvent(portal.memberId).json);
    expect(answer.status).toBe(200);
    expect(await rig.store.get(portal.memberId)).toBeDefined();
  });

  it("gives the handler's 405, 413 and 415 answers", async () => {
    const get = await fetch(`${url}/bitrix24/events`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect(await get.json()).toEqual({ error: 'METHOD_NOT_ALLOWED' });

    const big = await post('/bitrix24/events', 'application/x-www-form-urlencoded', `event=ONAPPINSTALL&pad=${'x'.repeat(9000)}`);
    expect(big.status).toBe(413);
    expect(await big.json()).toEqual({ error: 'PAYLOAD_TOO_LARGE' });

    const text = await post('/bitrix24/events', 'text/plain', 'hello');
    expect(text.status).toBe(415);
    expect(await text.json()).toEqual({ error: 'UNSUPPORTED_MEDIA_TYPE' });
  });

  it("leaves the app's other routes to Fastify's own JSON parsing", async () => {
    const answer = await post('/json', 'application/json', '{"a":1}');
    expect(await answer.json()).toEqual({ echoed: { a: 1 } });
    // ... and its own 415 for a form there: the plugin's parser did not leak out of its context.
    expect((await post('/json', 'application/x-www-form-urlencoded', 'a=1')).status).toBe(415);
  });

  it('works beside @fastify/formbody registered for the whole app', async () => {
    const other = Fastify();
    await other.register(formbody);
    await other.register(toFastifyPlugin(handler, { path: '/bitrix24/events' }));
    other.post('/form', (request) => Promise.resolve({ echoed: request.body }));
    await other.listen({ port: 0, host: '127.0.0.1' });
    try {
      const address = other.server.address();
      const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
      const portal = rig.b24.addPortal();
      const form = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } };
      const answer = await fetch(`${base}/bitrix24/events`, { ...form, body: rig.b24.installEvent(portal.memberId).form });
      expect(answer.status).toBe(200);
      expect(await rig.store.get(portal.memberId)).toBeDefined();
      expect(await (await fetch(`${base}/form`, { ...form, body: 'a=1' })).json()).toEqual({ echoed: { a: '1' } });
    } finally {
      await other.close();
    }
  });

  it('a handler mounted bare on a Fastify route answers 500 at once and the log names toFastifyPlugin', async () => {
    const bare = Fastify();
    // @ts-expect-error TypeScript refuses this mounting (unlike Express's); plain JavaScript does not.
    bare.post('/bare', handler);
    await bare.listen({ port: 0, host: '127.0.0.1' });
    try {
      const address = bare.server.address();
      const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
      const answer = await fetch(`${base}/bare`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(10_000) });
      expect(answer.status).toBe(500);
      expect(rig.logger.lines.filter((line) => line.includes('toFastifyPlugin('))).toHaveLength(1);
    } finally {
      await bare.close();
    }
  });

  it('refuses a path that is not absolute', () => {
    expect(() => toFastifyPlugin(handler, { path: 'events' })).toThrow(TypeError);
  });
});
