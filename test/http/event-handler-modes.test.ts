// createEventHandler's answers beyond authentication: a listener that throws, answering at once,
// method/size/media-type refusals, one URL for lifecycle and REST events, the Fetch adapter, options.

import { createServer } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createEventHandler,
  createLifecycleHandler,
  MemoryTokenStore,
  PortalRevokedError,
  StoreError,
  toFetchHandler,
  type EventHandlerOptions,
  type RestEventErrorInfo,
} from '../../src/index.js';
import { toNodeHandler } from '../../src/http/node.js';
import { seedStore } from '../../src/testing/fake-bitrix24.js';
import type { FakePortal } from '../../src/testing/fake-bitrix24.js';
import { listen, post, rawRequest, startRig, type Rig } from './helpers.js';

let rig: Rig;
let portal: FakePortal;
const servers: { close: () => Promise<void> }[] = [];

beforeEach(async () => {
  rig = await startRig();
  portal = rig.b24.addPortal();
  await seedStore(rig.store, rig.b24, portal.memberId);
  rig.secrets.add(portal.applicationToken);
});

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
  await rig.pool.close();
  await rig.b24.close();
});

async function serveHandler(options: Omit<EventHandlerOptions, 'pool'> & { pool?: EventHandlerOptions['pool'] }) {
  const handler = createEventHandler({ pool: rig.pool, ...options });
  const server = await listen(createServer(toNodeHandler(handler)));
  servers.push(server);
  return { handler, url: `${server.url}/events` };
}

function dealAdd(): { form: string; accessToken: string } {
  const event = rig.b24.restEvent(portal.memberId, 'ONCRMDEALADD', { FIELDS: { ID: '42' } });
  rig.secrets.add(event.chain.accessToken, event.chain.refreshToken);
  return { form: event.form, accessToken: event.chain.accessToken };
}

describe('a listener that throws', () => {
  it('answers 500 without details, logs the error without tokens, and reports it to onError', async () => {
    const reported: { error: unknown; info: RestEventErrorInfo }[] = [];
    const { url } = await serveHandler({
      on: {
        ONCRMDEALADD: ({ auth }) => {
          throw new Error(`boom with ${auth.accessToken ?? ''} inside`);
        },
      },
      onError: (error, info) => {
        reported.push({ error, info });
      },
    });
    const { form, accessToken } = dealAdd();
    const answer = await post(url, form);
    expect([answer.status, answer.json]).toEqual([500, { error: 'INTERNAL_ERROR' }]);
    expect(answer.text).not.toContain('boom');
    expect(reported).toHaveLength(1);
    expect(reported[0]!.info).toEqual({ event: 'ONCRMDEALADD', memberId: portal.memberId, answered: false });
    const logs = rig.logger.lines.join('\n');
    expect(logs).toContain('REST event listener failed');
    expect(logs).not.toContain(accessToken);
    expect(rig.secrets.leakedIn(logs + answer.text)).toEqual([]);
  });
});

describe("acknowledge: 'immediately'", () => {
  it('answers 200 before the listener finishes, then reports its error; drain() waits for it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const reported: RestEventErrorInfo[] = [];
    let finished = false;
    const { handler, url } = await serveHandler({
      acknowledge: 'immediately',
      on: {
        ONCRMDEALADD: async ({ b24 }) => {
          await gate;
          await b24.actions.v2.call.make({ method: 'profile' });
          finished = true;
          throw new Error('after the answer');
        },
      },
      onError: (_error, info) => {
        reported.push(info);
      },
    });
    const answer = await post(url, dealAdd().form);
    expect([answer.status, answer.json]).toEqual([200, { ok: true }]);
    expect(finished).toBe(false);
    release();
    await handler.drain();
    expect(finished).toBe(true);
    expect(rig.b24.stats.restByMethod['profile']).toBe(1);
    expect(reported).toEqual([{ event: 'ONCRMDEALADD', memberId: portal.memberId, answered: true }]);
    expect(rig.logger.lines.some((line) => line.includes('"answered":true') && line.includes('REST event listener failed'))).toBe(true);
  });

  it('still refuses a forged event with 403 before answering', async () => {
    let ran = false;
    const { url } = await serveHandler({ acknowledge: 'immediately', on: { ONCRMDEALADD: () => void (ran = true) } });
    const answer = await post(url, dealAdd().form.replace(portal.applicationToken, 'a'.repeat(32)));
    expect(answer.status).toBe(403);
    expect(ran).toBe(false);
  });
});

describe('refusals shared with the lifecycle handler', () => {
  it('answers 405, 415, 413 and 400 like the lifecycle handler', async () => {
    let ran = 0;
    const { url } = await serveHandler({ maxBodyBytes: 2048, on: { ONCRMDEALADD: () => void (ran += 1) } });
    const get = await rawRequest(url, { method: 'GET' });
    expect([get.status, get.headers['allow']]).toEqual([405, 'POST']);
    expect((await post(url, dealAdd().form, 'text/plain')).status).toBe(415);
    expect((await post(url, `${dealAdd().form}&pad=${'x'.repeat(4096)}`)).status).toBe(413);
    const bad = await post(url, dealAdd().form.replace(/auth%5Bmember_id%5D=[^&]+/, 'auth%5Bmember_id%5D=..%2Fetc'));
    expect([bad.status, bad.json]).toEqual([400, { error: 'INVALID_EVENT', field: 'auth[member_id]' }]);
    expect(ran).toBe(0);
  });

  it('answers a generic 500 (503 with Retry-After when unreachable) when the store fails, never naming the store, and runs nothing', async () => {
    const store = new MemoryTokenStore();
    store.get = () => Promise.reject(new Error('disk on fire'));
    let ran = false;
    const pool = { ...rigContext(), store, clientFor: (id: string) => rig.pool.clientFor(id) };
    const { url } = await serveHandler({ pool, on: { ONCRMDEALADD: () => void (ran = true) } });
    const answer = await post(url, dealAdd().form);
    expect([answer.status, answer.json]).toEqual([500, { error: 'INTERNAL_ERROR' }]);
    expect(ran).toBe(false);
    expect(rig.logger.lines.join('\n')).not.toContain('disk on fire');
    store.get = () => Promise.reject(new StoreError('connection refused', { transient: true }));
    const unreachable = await rawRequest(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: dealAdd().form });
    expect([unreachable.status, JSON.parse(unreachable.text), unreachable.headers['retry-after']]).toEqual([503, { error: 'INTERNAL_ERROR' }, '5']);
  });
});

describe("when the portal's client cannot be had", () => {
  it.each([
    ['the portal was revoked since', () => new PortalRevokedError('m', 'invalid_grant'), 403, 'VERIFICATION_FAILED'],
    ['the store failed', () => new StoreError('down'), 500, 'INTERNAL_ERROR'],
    ['the store was unreachable', () => new StoreError('down', { transient: true }), 503, 'INTERNAL_ERROR'],
    ['something else failed', () => new Error('unexpected'), 500, 'INTERNAL_ERROR'],
  ])('answers %s with %i and runs nothing', async (_name, makeError, status, code) => {
    let ran = false;
    const pool = { ...rigContext(), clientFor: () => Promise.reject(makeError()) };
    const { url } = await serveHandler({ pool, on: { ONCRMDEALADD: () => void (ran = true) } });
    const answer = await post(url, dealAdd().form);
    expect([answer.status, answer.json]).toEqual([status, { error: code }]);
    expect(ran).toBe(false);
  });
});

describe('one URL for lifecycle and REST events', () => {
  it('passes ONAPP* events to the lifecycle handler and the rest to the listeners', async () => {
    const seen: string[] = [];
    const lifecycle = createLifecycleHandler({ pool: rig.pool, trustedOAuthHosts: [rig.b24.oauthUrl] });
    const { url } = await serveHandler({ lifecycle, on: { ONCRMDEALADD: ({ memberId }) => void seen.push(memberId) } });
    const fresh = rig.b24.addPortal();

    expect((await post(url, rig.b24.restEvent(fresh.memberId, 'ONCRMDEALADD', {}).form)).status).toBe(403);
    expect((await post(url, rig.b24.installEvent(fresh.memberId).form)).status).toBe(200);
    expect(await rig.store.get(fresh.memberId)).toMatchObject({ applicationToken: fresh.applicationToken, state: 'active' });
    expect((await post(url, rig.b24.restEvent(fresh.memberId, 'ONCRMDEALADD', {}).json, 'application/json')).status).toBe(200);
    expect(seen).toEqual([fresh.memberId]);
    expect((await post(url, rig.b24.uninstallEvent(fresh.memberId).form)).status).toBe(200);
    expect(await rig.store.get(fresh.memberId)).toBeUndefined();
    expect((await post(url, rig.b24.restEvent(fresh.memberId, 'ONCRMDEALADD', {}).form)).status).toBe(403);
    expect(seen).toEqual([fresh.memberId]);
  });

  it('without a lifecycle handler, answers a lifecycle event 400 UNKNOWN_EVENT and stores nothing', async () => {
    const { url } = await serveHandler({ on: {} });
    const fresh = rig.b24.addPortal();
    const answer = await post(url, rig.b24.installEvent(fresh.memberId).form);
    expect([answer.status, answer.json]).toEqual([400, { error: 'UNKNOWN_EVENT', field: 'event' }]);
    expect(await rig.store.get(fresh.memberId)).toBeUndefined();
  });
});

describe('mounting and options', () => {
  it('works through toFetchHandler, with listener names matched case-insensitively', async () => {
    const seen: string[] = [];
    const fetchHandler = toFetchHandler(createEventHandler({ pool: rig.pool, on: { onCrmDealAdd: ({ event }) => void seen.push(event) } }));
    const response = await fetchHandler(
      new Request('http://app.test/events', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: dealAdd().form }),
    );
    expect([response.status, await response.json()]).toEqual([200, { ok: true }]);
    expect(seen).toEqual(['ONCRMDEALADD']);
  });

  it('refuses bad options with a TypeError', () => {
    const pool = rig.pool;
    expect(() => createEventHandler({ pool: rigContext() as never, on: {} })).toThrow(/clientFor/);
    expect(() => createEventHandler({ pool, on: { ONX: 'nope' as never } })).toThrow(TypeError);
    expect(() => createEventHandler({ pool, on: { onx: () => undefined, ONX: () => undefined } })).toThrow(/twice/);
    expect(() => createEventHandler({ pool, on: {}, acknowledge: 'later' as never })).toThrow(TypeError);
    expect(() => createEventHandler({ pool, on: {}, maxBodyBytes: 0 })).toThrow(TypeError);
  });
});

/** The rig's pool as a plain context without `clientFor`. */
function rigContext() {
  return { store: rig.store, oauth: rig.pool.oauth, logger: rig.logger, clock: rig.context.clock, notify: (change: Parameters<Rig['context']['notify']>[0]) => rig.context.notify(change) };
}
