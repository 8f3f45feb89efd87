// Issue 22 case 1: forged events must not be relayed to the OAuth host one for one. Real HTTP on
// loopback against the stand-in Bitrix24; every count is the stand-in's own (its stats).

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAppPageRequest } from '../../src/events/parse.js';
import { createLifecycleHandler, type LifecycleHandler } from '../../src/http/handler.js';
import { toNodeHandler } from '../../src/http/node.js';
import { ProofGate } from '../../src/guard/proof-gate.js';
import type { PlainResponse } from '../../src/plain.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import type { PortalClientPoolOptions } from '../../src/pool/options.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { FakeBitrix24, type FakePortal } from '../../src/testing/fake-bitrix24.js';
import { listen, post, recordingLogger, toForm } from '../http/helpers.js';

let b24: FakeBitrix24;
let pool: PortalClientPool;
let handler: LifecycleHandler;
let server: { url: string; close: () => Promise<void> };
let logger: ReturnType<typeof recordingLogger>;

async function start(poolOptions: Partial<PortalClientPoolOptions> = {}): Promise<void> {
  logger = recordingLogger();
  pool = new PortalClientPool({
    store: new MemoryTokenStore(),
    clientId: b24.clientId,
    clientSecret: b24.clientSecret,
    logger,
    ...b24.trust,
    ...poolOptions,
  });
  handler = createLifecycleHandler({ pool, trustedOAuthHosts: [b24.oauthUrl] });
  server = await listen(createServer(toNodeHandler(handler)));
}

beforeEach(async () => {
  b24 = await FakeBitrix24.start();
});

afterEach(async () => {
  handler.close();
  await server.close();
  await pool.close();
  await b24.close();
});

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** An ONAPPINSTALL naming the stand-in's OAuth host with a random member id and made-up tokens. */
function forgedInstall(memberId = hex(16)): string {
  return toForm({
    event: 'ONAPPINSTALL',
    event_handler_id: '1',
    data: { VERSION: '1', ACTIVE: 'Y', INSTALLED: 'Y', LANGUAGE_ID: 'en' },
    ts: String(Math.floor(Date.now() / 1000)),
    auth: {
      access_token: hex(26),
      expires: String(Math.floor(Date.now() / 1000) + 3600),
      expires_in: '3600',
      scope: 'crm',
      domain: `${memberId.slice(0, 8)}.bitrix24.test`,
      server_endpoint: b24.serverEndpoint,
      status: 'L',
      client_endpoint: `https://${memberId.slice(0, 8)}.bitrix24.test/rest/`,
      member_id: memberId,
      user_id: '1',
      refresh_token: hex(26),
      application_token: hex(16),
    },
  });
}

/** An ONAPPUNINSTALL for a stored portal carrying its (app-page visible) application token. */
function forgedUninstall(portal: FakePortal, ts: number): string {
  return toForm({
    event: 'ONAPPUNINSTALL',
    event_handler_id: '2',
    data: { CLEAN: '0', LANGUAGE_ID: 'en' },
    ts: String(ts),
    auth: {
      domain: portal.domain,
      client_endpoint: portal.clientEndpoint,
      server_endpoint: b24.serverEndpoint,
      member_id: portal.memberId,
      application_token: portal.applicationToken,
    },
  });
}

async function installGenuine(): Promise<FakePortal> {
  const portal = b24.addPortal();
  const event = b24.installEvent(portal.memberId);
  expect((await post(server.url, event.form)).status).toBe(200);
  return portal;
}

function countStatuses(answers: readonly { status: number }[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const { status } of answers) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

describe('forged lifecycle events cost the OAuth host a bounded number of requests', () => {
  it('200 forged ONAPPINSTALL with random member ids over HTTP: at most perMinute token requests, the rest 429 with Retry-After', async () => {
    await start({ proofLimits: { perMinute: 50 } });
    b24.resetStats();

    const answers = await Promise.all(Array.from({ length: 200 }, () => post(server.url, forgedInstall())));

    // Before: 200 token requests, one per forgery.
    expect(b24.stats.refreshRequests).toBeLessThanOrEqual(50);
    const statuses = countStatuses(answers);
    expect(statuses[403]).toBe(b24.stats.refreshRequests);
    expect(statuses[429]).toBe(200 - b24.stats.refreshRequests);
    expect(answers.find((answer) => answer.status === 429)?.json).toEqual({ error: 'PROOFS_THROTTLED' });
    expect(logger.lines.filter((line) => line.includes('Proofs refused')).length).toBe(1);
  });

  it('200 forged ONAPPINSTALL arriving at once with the default ceilings: exactly maxInFlight (32) token requests', async () => {
    await start();
    b24.resetStats();
    // Called in one go: every event is admitted or refused before any proof is answered.
    const answers: PlainResponse[] = await Promise.all(
      Array.from({ length: 200 }, () =>
        handler({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: forgedInstall() }),
      ),
    );
    expect(b24.stats.refreshRequests).toBe(32);
    const statuses = countStatuses(answers);
    expect(statuses).toEqual({ 403: 32, 429: 168 });
    expect(answers.find((answer) => answer.status === 429)?.headers['retry-after']).toBe('1');
  });

  it('100 forged uninstalls of one portal: app.info calls bounded by the portal ceiling (429 past it), the portal kept', async () => {
    await start();
    const portal = await installGenuine();
    b24.resetStats();
    const now = Math.floor(Date.now() / 1000);

    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => post(server.url, forgedUninstall(portal, now + i))));

    // Before: 100 app.info calls. A portal's ceiling is 30 per minute (4 in flight).
    expect(b24.stats.appInfoCalls).toBeGreaterThan(0);
    expect(b24.stats.appInfoCalls).toBeLessThanOrEqual(30);
    const statuses = countStatuses(answers);
    expect(statuses[403]).toBeLessThanOrEqual(30);
    expect(statuses[429]).toBe(100 - (statuses[403] ?? 0));
    expect(answers.find((answer) => answer.status === 429)?.json).toEqual({ error: 'PROOFS_THROTTLED' });
    const warning = logger.lines.find((line) => line.includes('Proofs refused'));
    expect(warning).toContain(portal.memberId);
    expect((await pool.store.get(portal.memberId))?.state).toBe('active');
    // The genuine portal's own calls go on.
    const client = await pool.clientFor(portal.memberId);
    await client.actions.v2.call.make({ method: 'profile' });
  });

  it('a repeated identical forgery costs 0 further requests', async () => {
    await start();
    const portal = await installGenuine();
    const install = forgedInstall();
    const uninstall = forgedUninstall(portal, Math.floor(Date.now() / 1000));
    b24.resetStats();

    expect((await post(server.url, install)).status).toBe(403);
    expect((await post(server.url, uninstall)).status).toBe(403);
    const first = { refresh: b24.stats.refreshRequests, appInfo: b24.stats.appInfoCalls };
    expect(first).toEqual({ refresh: 1, appInfo: 1 });

    for (let i = 0; i < 20; i++) {
      expect((await post(server.url, install)).status).toBe(403);
      expect((await post(server.url, uninstall)).status).toBe(403);
    }
    expect({ refresh: b24.stats.refreshRequests, appInfo: b24.stats.appInfoCalls }).toEqual(first);
  });

  it('a forged refresh token presented twice (another event around it) is refused again without a request', async () => {
    await start();
    const refreshToken = hex(26);
    const withToken = (memberId: string): string => forgedInstall(memberId).replace(/auth%5Brefresh_token%5D=[0-9a-f]+/, `auth%5Brefresh_token%5D=${refreshToken}`);
    b24.resetStats();
    expect((await post(server.url, withToken(hex(16)))).status).toBe(403);
    expect((await post(server.url, withToken(hex(16)))).status).toBe(403);
    expect(b24.stats.refreshRequests).toBe(1);
  });

  it("forged app-page posts (rememberUser) for one portal: at most the portal's in-flight ceiling of token requests at once", async () => {
    await start();
    const portal = await installGenuine();
    b24.resetStats();
    const pages = Array.from({ length: 50 }, () => {
      const page = b24.appPageRequest(portal.memberId);
      const forged = page.body.replace(/REFRESH_ID=[0-9a-f]+/, `REFRESH_ID=${hex(26)}`);
      return parseAppPageRequest({ query: page.query, body: forged }, {});
    });
    const outcomes = await Promise.allSettled(pages.map((page) => pool.rememberUser(page)));
    // Before: 50 token requests.
    expect(b24.stats.refreshRequests).toBe(4);
    const codes = outcomes.map((outcome) => (outcome.status === 'rejected' ? (outcome.reason as { code: string }).code : 'stored'));
    expect(codes.filter((code) => code === 'PROOFS_THROTTLED').length).toBe(46);
  });

  it('a genuine install delivered twice at once: one token request, both answered alike', async () => {
    await start();
    const portal = b24.addPortal();
    const event = b24.installEvent(portal.memberId);
    b24.resetStats();
    const answers = await Promise.all([post(server.url, event.form), post(server.url, event.form)]);
    // Before: the second proof spent nothing new but met a spent refresh token (403).
    expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
    expect(b24.stats.refreshRequests).toBe(1);
  });

  it('code exchanges (the authorization callback) count against the process ceilings', async () => {
    await start({ proofLimits: { maxInFlight: 5 } });
    b24.resetStats();
    const outcomes = await Promise.allSettled(Array.from({ length: 40 }, () => pool.oauth.exchangeCode(b24.oauthUrl, hex(16))));
    // Before: 40 code exchanges.
    expect(b24.stats.codeExchanges).toBe(5);
    const codes = outcomes.map((outcome) => (outcome.status === 'rejected' ? (outcome.reason as { code: string }).code : 'exchanged'));
    expect(codes.filter((code) => code === 'PROOFS_THROTTLED')).toHaveLength(35);
  });
});

describe('ProofGate ceilings', () => {
  it('a portal\'s minute starts over after 60 s; Retry-After says when; the process ceiling holds across portals', () => {
    let now = 1_000_000;
    const gate = new ProofGate({ perPortalPerMinute: 3, perMinute: 5 }, () => now);
    for (let i = 0; i < 3; i++) gate.admit('a')();
    now += 20_000;
    expect(() => gate.admit('a')).toThrow(expect.objectContaining({ code: 'PROOFS_THROTTLED', scope: 'portal', bound: 'per-minute', retryAfterMs: 40_000 }));
    gate.admit('b')();
    gate.admit('c')();
    expect(() => gate.admit('d')).toThrow(expect.objectContaining({ scope: 'process', bound: 'per-minute' }));
    now += 40_000;
    gate.admit('a')();
    expect(gate.stats).toMatchObject({ admitted: 6, throttled: 2 });
  });

  it('in flight: released proofs free their place, a release counts once', () => {
    const gate = new ProofGate({ maxInFlightPerPortal: 2 });
    const first = gate.admit('a');
    gate.admit('a');
    expect(() => gate.admit('a')).toThrow(expect.objectContaining({ scope: 'portal', bound: 'in-flight', retryAfterMs: 1000 }));
    first();
    first();
    gate.admit('a');
    expect(() => gate.admit('a')).toThrow(expect.objectContaining({ bound: 'in-flight' }));
  });

  it('refuses bad limits with a TypeError', () => {
    expect(() => new ProofGate({ maxInFlight: 0 })).toThrow(TypeError);
    expect(() => new ProofGate({ perMinute: 1.5 })).toThrow(TypeError);
  });
});
