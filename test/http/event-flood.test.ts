// Issue 22 case 2: one user of a portal (who holds its application_token, as every app-page user may)
// floods the REST event endpoint. The listeners pending stay bounded (per portal and in all), an event
// delivered twice runs its listener once while the first waits, the heap does not grow with the flood,
// and the portal's own next call is not pushed out by the listeners' calls (they may use only their
// share of the portal's request budget). Counts only; the wait is the budget's own number.
import { Agent, request as httpRequest } from 'node:http';
import { createServer } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEventHandler, findPortalTokensError, RateLimitedError, withRequestDeadline, type EventHandlerOptions } from '../../src/index.js';
import { toNodeHandler } from '../../src/http/node.js';
import { seedStore } from '../../src/testing/fake-bitrix24.js';
import type { FakePortal } from '../../src/testing/fake-bitrix24.js';
import { listen, startRig, type Rig } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMiB = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
};

const FLOOD = 3_000;

let rig: Rig;
let portal: FakePortal;
let agent: Agent;
let close: (() => Promise<void>) | undefined;

beforeEach(async () => {
  rig = await startRig();
  portal = rig.b24.addPortal();
  await seedStore(rig.store, rig.b24, portal.memberId);
  rig.secrets.add(portal.applicationToken);
  agent = new Agent({ keepAlive: true, maxSockets: 64 });
});

afterEach(async () => {
  agent.destroy();
  await close?.();
  close = undefined;
  await rig.pool.close();
  await rig.b24.close();
});

/** Posts `body` with the keep-alive agent; resolves with the status and the retry-after header. */
function send(url: string, body: string): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A handler whose listener re-reads the entity through the portal's client, as the guide advises. */
async function serveRereading(options: Partial<EventHandlerOptions> = {}) {
  const counts = { started: 0, finished: 0 };
  const handler = createEventHandler({
    pool: rig.pool,
    acknowledge: 'immediately',
    on: {
      ONCRMDEALUPDATE: async ({ b24 }) => {
        counts.started++;
        try {
          await b24.actions.v2.call.make({ method: 'profile' });
        } finally {
          counts.finished++;
        }
      },
    },
    ...options,
  });
  const server = await listen(createServer(toNodeHandler(handler)));
  close = server.close;
  return { handler, counts, url: `${server.url}/events` };
}

/** The portal's own next call, allowed to wait 1 s for the budget: the wait the budget named when it was refused, else 0. */
async function ownCallWaitMs(): Promise<number> {
  const b24 = await rig.pool.clientFor(portal.memberId);
  try {
    await withRequestDeadline({ maxWaitMs: 1_000 }, () => b24.actions.v2.call.make({ method: 'app.info' }));
    return 0;
  } catch (error) {
    const typed = findPortalTokensError(error);
    if (typed instanceof RateLimitedError) return typed.waitMs;
    throw error;
  }
}

async function flood(url: string, bodies: (i: number) => string): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  const answers = await Promise.all(Array.from({ length: FLOOD }, (_, i) => send(url, bodies(i))));
  for (const { status, retryAfter } of answers) {
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    if (status !== 200) expect(Number(retryAfter)).toBeGreaterThan(0);
  }
  return statuses;
}

describe('one user floods a portal with REST events', () => {
  it('3,000 replays of one event: listeners pending <= 5 (4 running, 1 waiting), heap flat, the portal\'s own call waits < 1 s', async () => {
    const { handler, counts, url } = await serveRereading();
    const body = rig.b24.restEvent(portal.memberId, 'ONCRMDEALUPDATE', { FIELDS: { ID: '42' } }).form;
    await send(url, body); // warms the client and the connection
    await handler.drain();
    const before = heapMiB();
    const startedBefore = counts.started;

    const statuses = await flood(url, () => body);

    const pending = counts.started - counts.finished + handler.stats().queued;
    const grownMiB = heapMiB() - before;
    const waitMs = await ownCallWaitMs();
     
    console.info(`replays: answers ${JSON.stringify([...statuses])}, listeners run ${counts.started - startedBefore}, pending ${pending}, heap +${grownMiB.toFixed(1)} MiB, own call wait ${waitMs} ms, stats ${JSON.stringify(handler.stats())}`);
    expect(statuses.get(200)).toBe(FLOOD); // a duplicate is answered 200: Bitrix24 would not resend it anyway
    // A replay while an identical event waits for its turn is dropped; one arriving after it started
    // is run again (two genuine changes in one second look the same), at most 4 at once.
    expect(pending).toBeLessThanOrEqual(5);
    expect(handler.stats().duplicates).toBe(FLOOD - (counts.started - startedBefore) - handler.stats().queued);
    expect(handler.stats().duplicates).toBeGreaterThan(FLOOD * 0.9);
    expect(grownMiB).toBeLessThan(8);
    expect(waitMs).toBe(0);
  }, 120_000);

  it('3,000 different events: listeners pending <= the per-portal bound, the rest 429 with Retry-After; the own call waits < 1 s', async () => {
    const { handler, counts, url } = await serveRereading({ maxQueuedListenersPerPortal: 50, maxRunningListenersPerPortal: 4 });
    const template = rig.b24.restEvent(portal.memberId, 'ONCRMDEALUPDATE', { FIELDS: { ID: 'IDX' } }).form;
    await send(url, template);
    await handler.drain();
    const before = heapMiB();

    const statuses = await flood(url, (i) => template.replace('IDX', String(i)));

    const pending = counts.started - counts.finished + handler.stats().queued;
    const grownMiB = heapMiB() - before;
    const waitMs = await ownCallWaitMs();
     
    console.info(`distinct: answers ${JSON.stringify([...statuses])}, pending ${pending}, heap +${grownMiB.toFixed(1)} MiB, own call wait ${waitMs} ms, stats ${JSON.stringify(handler.stats())}`);
    expect(pending).toBeLessThanOrEqual(54);
    expect(handler.stats().running).toBeLessThanOrEqual(4);
    expect((statuses.get(429) ?? 0) + (statuses.get(200) ?? 0)).toBe(FLOOD);
    expect(statuses.get(429)).toBeGreaterThan(0);
    expect(handler.stats().refused).toBe(statuses.get(429));
    expect(grownMiB).toBeLessThan(8);
    expect(waitMs).toBe(0);
    const warnings = rig.logger.lines.filter((line) => line.includes('REST event refused: too many listeners'));
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.length).toBeLessThan(10); // one warning per portal per interval, not one per event
    expect(warnings[0]).toContain(portal.memberId);
  }, 120_000);
});
