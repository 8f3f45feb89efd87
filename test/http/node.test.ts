// toNodeHandler in plain node:http and in Express: raw bodies, bodies Express parsers already consumed,
// the early 413, byte-exact content-length, and failures routed to next().

import { createServer, request } from 'node:http';
import express from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLifecycleHandler, type LifecycleHandler } from '../../src/http/handler.js';
import { toNodeHandler } from '../../src/http/node.js';
import type { PlainHandler } from '../../src/plain.js';
import { listen, post, rawRequest, startRig, type Rig } from './helpers.js';

let rig: Rig;
let handler: LifecycleHandler;
const closers: (() => Promise<void>)[] = [];

beforeEach(async () => {
  rig = await startRig();
  handler = createLifecycleHandler({ pool: rig.context, trustedOAuthHosts: [rig.b24.oauthUrl] });
});

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await rig.pool.close();
  await rig.b24.close();
});

async function start(app: Parameters<typeof createServer>[1]): Promise<string> {
  const server = await listen(createServer(app));
  closers.push(server.close);
  return server.url;
}

function freshInstall() {
  const portal = rig.b24.addPortal();
  return { portal, event: rig.b24.installEvent(portal.memberId) };
}

describe('toNodeHandler in Express', () => {
  const parsers: [string, express.RequestHandler | undefined, 'form' | 'json'][] = [
    ['no body parser', undefined, 'form'],
    ['urlencoded extended (nested object)', express.urlencoded({ extended: true }), 'form'],
    ['urlencoded not extended (flat bracket keys)', express.urlencoded({ extended: false }), 'form'],
    ['json', express.json(), 'json'],
    ['raw (Buffer)', express.raw({ type: '*/*' }), 'form'],
    ['text (string)', express.text({ type: '*/*' }), 'form'],
  ];

  for (const [name, parser, kind] of parsers) {
    it(`stores a genuine install with ${name}`, async () => {
      const app = express();
      if (parser !== undefined) app.use(parser);
      app.post('/bitrix24/events', toNodeHandler(handler));
      const url = await start(app);
      const { portal, event } = freshInstall();

      const answer = await post(`${url}/bitrix24/events`, kind === 'json' ? event.json : event.form, kind === 'json' ? 'application/json' : undefined);

      expect(answer).toMatchObject({ status: 200, json: { ok: true } });
      // Proven by refreshing it: the fresh pair is stored, the event's refresh token is spent.
      expect(rig.b24.tokenStatus(event.chain.refreshToken)).toBe('spent');
      expect(rig.b24.tokenStatus((await rig.store.get(portal.memberId))!.refreshToken)).toBe('live');
    });
  }

  it('reads the raw body when a parser left an empty placeholder object without consuming the stream', async () => {
    const app = express();
    // What Express 4's parsers do for a content type they do not handle.
    app.use((req, _res, next) => {
      (req as { body?: unknown }).body = {};
      next();
    });
    app.post('/bitrix24/events', toNodeHandler(handler));
    const url = await start(app);
    const { portal, event } = freshInstall();

    expect((await post(`${url}/bitrix24/events`, event.form)).status).toBe(200);
    expect(await rig.store.get(portal.memberId)).toBeDefined();
  });

  it('hands a failing handler to the error middleware through next()', async () => {
    const failing: PlainHandler = () => Promise.reject(new Error('boom'));
    const app = express();
    app.post('/x', toNodeHandler(failing));
    app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(599).json({ caught: error.message });
    });
    const url = await start(app);
    expect(await post(`${url}/x`, 'a=1')).toMatchObject({ status: 599, json: { caught: 'boom' } });
  });
});

describe('toNodeHandler in node:http', () => {
  it('answers 500 without details when a handler rejects and there is no next()', async () => {
    const url = await start(toNodeHandler(() => Promise.reject(new Error('secret detail'))));
    const answer = await post(url, 'a=1');
    expect(answer.status).toBe(500);
    expect(answer.text).not.toContain('secret detail');
  });

  it('sets content-length in bytes, not characters', async () => {
    const url = await start(
      toNodeHandler(() => Promise.resolve({ status: 200, headers: { 'content-type': 'application/json' }, body: { name: 'Ольга ✓' } })),
    );
    const answer = await rawRequest(url, { method: 'GET' });
    expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.text, 'utf8'));
    expect(JSON.parse(answer.text)).toEqual({ name: 'Ольга ✓' });
  });

  it('answers 413 as soon as content-length announces too much, without calling the handler', async () => {
    let calls = 0;
    const counting: PlainHandler = Object.assign(
      () => {
        calls += 1;
        return Promise.resolve({ status: 200, headers: {}, body: null });
      },
      { maxBodyBytes: 1000 },
    );
    const url = await start(toNodeHandler(counting));
    const answer = await rawRequest(url, { body: 'x'.repeat(50_000), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(answer.status).toBe(413);
    expect(answer.headers['connection']).toBe('close');
    expect(calls).toBe(0);
  });

  it('stops reading a chunked body at the limit and still serves the next request', async () => {
    let calls = 0;
    const counting: PlainHandler = () => {
      calls += 1;
      return Promise.resolve({ status: 200, headers: {}, body: { ok: true } });
    };
    const url = await start(toNodeHandler(counting, { maxBodyBytes: 2048 }));
    const answer = await new Promise<number>((resolve, reject) => {
      // No content-length: the limit must be enforced while streaming.
      const req = request(url, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      // Once the server has answered and closed, further writes may fail: that is the point.
      req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
      const chunk = Buffer.alloc(1024, 'a');
      let sent = 0;
      const pump = (): void => {
        while (sent < 64) {
          sent += 1;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    expect(answer).toBe(413);
    expect(calls).toBe(0);
    expect((await post(url, 'small=1')).status).toBe(200);
    expect(calls).toBe(1);
  });

  it('passes the query string to the handler', async () => {
    let seen: string | undefined;
    const url = await start(
      toNodeHandler((request) => {
        seen = request.query instanceof URLSearchParams ? request.query.get('code') ?? undefined : undefined;
        return Promise.resolve({ status: 204, headers: {}, body: undefined });
      }),
    );
    await rawRequest(`${url}/cb?code=abc&state=s`, { method: 'GET' });
    expect(seen).toBe('abc');
  });
});
