// A handler mounted without its adapter: Express hands a neutral handler Node's request and response,
// and before this guard every request hung with no log. Now the first call throws a TypeError that
// says to wrap it (Express answers 500 and the handler logs it once), and toFetchHandler refuses a
// Node request the same way.
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import express from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEventHandler } from '../../src/http/events.js';
import { toFetchHandler } from '../../src/http/fetch.js';
import { toNodeHandler } from '../../src/http/node.js';
import { createLifecycleHandler, type LifecycleHandler } from '../../src/http/handler.js';
import { listen, startRig, type Rig } from './helpers.js';

let rig: Rig;
let handler: LifecycleHandler;
const closers: (() => Promise<void>)[] = [];

beforeEach(async () => {
  rig = await startRig();
  handler = createLifecycleHandler({ pool: rig.context, trustedOAuthHosts: [rig.b24.oauthUrl] });
});
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  handler.close();
  await rig.pool.close();
  await rig.b24.close();
});

function nodePair(): [IncomingMessage, ServerResponse] {
  const req = new IncomingMessage(new Socket());
  req.method = 'POST';
  return [req, new ServerResponse(req)];
}

describe('a neutral handler given Node request objects', () => {
  it('mounted in Express as it is (this compiles under strict), answers 500 at once and logs how to mount it', async () => {
    const app = express();
    app.post('/bitrix24/events', handler);
    const server = await listen(createServer(app));
    closers.push(server.close);
    const portal = rig.b24.addPortal();
    for (let i = 0; i < 2; i++) {
      const answer = await fetch(`${server.url}/bitrix24/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: rig.b24.installEvent(portal.memberId).form,
        signal: AbortSignal.timeout(10_000), // before the guard: no answer, ever
      });
      expect(answer.status).toBe(500);
    }
    const lines = rig.logger.lines.filter((line) => line.includes('toNodeHandler'));
    expect(lines).toHaveLength(1); // once, not on every request
    expect(lines[0]).toContain('"level":"error"');
    expect(await rig.store.get(portal.memberId)).toBeUndefined();
  });

  it('throws a TypeError synchronously, naming the adapter to use', () => {
    const [req, res] = nodePair();
    const call = (handler as unknown as (req: IncomingMessage, res: ServerResponse) => unknown).bind(undefined, req, res);
    expect(call).toThrow(TypeError);
    expect(call).toThrow(/toNodeHandler\(/);
  });

  it('the REST event handler refuses them too', () => {
    const events = createEventHandler({ pool: rig.pool, on: {} });
    const [req, res] = nodePair();
    expect(() => (events as unknown as (req: IncomingMessage, res: ServerResponse) => unknown)(req, res)).toThrow(/toNodeHandler\(/);
  });

  it('a Fastify request and reply get the Fastify adapter named', () => {
    const [req, res] = nodePair();
    const fastifyLike = [{ raw: req, method: 'POST', headers: {}, body: undefined }, { raw: res, code: () => undefined }];
    expect(() => (handler as unknown as (...args: unknown[]) => unknown)(...fastifyLike)).toThrow(/toFastifyPlugin\(/);
  });

  it('toFetchHandler refuses a Node request and names toNodeHandler', () => {
    const [req, res] = nodePair();
    const fetchHandler = toFetchHandler(handler) as unknown as (req: IncomingMessage, res: ServerResponse) => unknown;
    expect(() => fetchHandler(req, res)).toThrow(TypeError);
    expect(() => fetchHandler(req, res)).toThrow(/toNodeHandler\(/);
  });

  it('toNodeHandler refuses a Fetch Request and names toFetchHandler', () => {
    const nodeHandler = toNodeHandler(handler) as unknown as (request: Request) => unknown;
    const request = new Request('http://localhost/bitrix24/events', { method: 'POST', body: 'event=ONAPPINSTALL' });
    expect(() => nodeHandler(request)).toThrow(TypeError);
    expect(() => nodeHandler(request)).toThrow(/toFetchHandler\(/);
  });

  it('a plain request object still works', async () => {
    const answer = await handler({ method: 'GET', headers: {} });
    expect(answer.status).toBe(405);
  });
});
