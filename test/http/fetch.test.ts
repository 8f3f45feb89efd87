// toFetchHandler: Fetch Request in, Response out, as Hono, Next.js, Bun and Deno call it; the body limit
// enforced while streaming, the stream cancelled.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLifecycleHandler } from '../../src/http/handler.js';
import { toFetchHandler, type FetchRequestHandler } from '../../src/http/fetch.js';
import { startRig, type Rig } from './helpers.js';

let rig: Rig;
let fetchHandler: FetchRequestHandler;

beforeEach(async () => {
  rig = await startRig();
  fetchHandler = toFetchHandler(createLifecycleHandler({ pool: rig.context, trustedOAuthHosts: [rig.b24.oauthUrl], maxBodyBytes: 4096 }));
});

afterEach(async () => {
  await rig.pool.close();
  await rig.b24.close();
});

describe('toFetchHandler', () => {
  it('stores a genuine install sent as a form and answers JSON', async () => {
    const portal = rig.b24.addPortal();
    const event = rig.b24.installEvent(portal.memberId);

    const response = await fetchHandler(
      new Request('https://app.example/bitrix24/events', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: event.form,
      }),
    );

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({ ok: true });
    // Proven by refreshing it: the fresh pair is stored, the event's refresh token is spent.
      expect(rig.b24.tokenStatus(event.chain.refreshToken)).toBe('spent');
      expect(rig.b24.tokenStatus((await rig.store.get(portal.memberId))!.refreshToken)).toBe('live');
  });

  it('stores a genuine install sent as JSON', async () => {
    const portal = rig.b24.addPortal();
    const event = rig.b24.installEvent(portal.memberId);
    const response = await fetchHandler(
      new Request('https://app.example/e', { method: 'POST', headers: { 'content-type': 'application/json' }, body: event.json }),
    );
    expect(response.status).toBe(200);
    expect(await rig.store.get(portal.memberId)).toBeDefined();
  });

  it('answers 405 to a GET and 415 to text/plain', async () => {
    expect((await fetchHandler(new Request('https://app.example/e'))).status).toBe(405);
    const text = await fetchHandler(new Request('https://app.example/e', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'event=x' }));
    expect(text.status).toBe(415);
  });

  it('stops reading an endless body at the limit and cancels the stream', async () => {
    let pulls = 0;
    let cancelled = false;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls += 1;
        controller.enqueue(new Uint8Array(1024).fill(97));
      },
      cancel() {
        cancelled = true;
      },
    });
    const request = new Request('https://app.example/e', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: endless,
      duplex: 'half',
    });

    const response = await fetchHandler(request);

    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({ error: 'PAYLOAD_TOO_LARGE' });
    expect(cancelled).toBe(true);
    expect(pulls).toBeLessThan(20);
  });

  it('answers 413 at once when content-length announces too much', async () => {
    const response = await fetchHandler(
      new Request('https://app.example/e', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '999999' },
        body: 'a=1',
      }),
    );
    expect(response.status).toBe(413);
  });
});
