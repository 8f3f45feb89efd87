// Issue 22 case 4: an OAuth host that never answers must not block every portal's refreshes. Real
// refresh requests over loopback HTTP (the OAuth client the pool uses): a server that takes requests
// and never answers, and the stand-in Bitrix24 as a healthy host. Callers' waits run on a
// ManualClock; what is asserted is what happened in which order, never how long it took.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OAuthUnavailableError } from '../../src/errors.js';
import { OAuthClient } from '../../src/oauth/oauth-client.js';
import { oauthBaseFromServerEndpoint } from '../../src/protocol/oauth-hosts.js';
import type { PortalRecord } from '../../src/store/token-store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { listen } from '../http/helpers.js';
import { chainRecord, harness, view, type Harness } from './helpers.js';

const ANSWER_WAIT_MS = 10_000;

/** A loopback OAuth host that reads each request and never answers it. */
interface HangingHost {
  readonly url: string;
  /** The refresh tokens of the requests received, in order. */
  readonly received: string[];
  close(): Promise<void>;
}

async function hangingHost(): Promise<HangingHost> {
  const received: string[] = [];
  const held: ServerResponse[] = [];
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      received.push(new URLSearchParams(body).get('refresh_token') ?? '');
      held.push(response);
    });
  });
  const { url, close } = await listen(server);
  return { url, received, close };
}

/** Resolves once `condition` holds, checking every millisecond or so (a guard against a hang: fails after 10,000 checks). */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 10_000; turn++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`never happened: ${what}`);
}

/** Tracks `promise`: pending, resolved or rejected, and with what. */
function tagged<T>(promise: Promise<T>): { readonly state: () => 'pending' | 'resolved' | 'rejected'; readonly value: () => unknown } {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  let value: unknown;
  promise.then(
    (v) => {
      state = 'resolved';
      value = v;
    },
    (e: unknown) => {
      state = 'rejected';
      value = e;
    },
  );
  return { state: () => state, value: () => value };
}

let b24: FakeBitrix24;
let hang: HangingHost;
let h: Harness;

beforeEach(async () => {
  b24 = await FakeBitrix24.start();
  hang = await hangingHost();
  h = harness({ answerWaitMs: ANSWER_WAIT_MS, maxConcurrentRefreshes: 8 });
  h.clock.set(Date.now());
  const oauth = new OAuthClient({ clientId: b24.clientId, clientSecret: b24.clientSecret, now: () => h.clock.now() });
  // The pool's refresh: its OAuth client, the chain's own host, the hard cap as the request's timeout.
  h.script((record) => oauth.refresh(oauthBaseFromServerEndpoint(record.serverEndpoint), record.refreshToken, { timeoutMs: 180_000, proof: false }));
});

afterEach(async () => {
  await hang.close();
  await h.coordinator.close();
  await b24.close();
});

/** An expired chain stored for `memberId` whose refreshes go to the hanging host. */
async function hangingChain(memberId: string, chain: PortalRecord['chain'] = 'portal', n = 0): Promise<PortalRecord> {
  const now = h.clock.now();
  return h.store.upsert(
    chainRecord(
      {
        memberId,
        chain,
        serverEndpoint: `${hang.url}/rest/`,
        accessToken: `hang-access-${memberId}-${n}`,
        refreshToken: `hang-refresh-${memberId}-${n}`,
        expires: Math.floor(now / 1000) - 10,
      },
      now - 3_600_000,
    ),
  );
}

/** A portal of the stand-in (the healthy host) with a chain stored. */
async function healthyChain(): Promise<PortalRecord> {
  const portal = b24.addPortal();
  await seedStore(h.store, b24, portal.memberId);
  return (await h.store.get(portal.memberId))!;
}

describe('refresh turns shared fairly across OAuth hosts and portals', () => {
  it('10 refreshes hanging at one host: a portal on a healthy host refreshes while they hang, and every queued caller gets its typed error', async () => {
    const hanging = await Promise.all(Array.from({ length: 10 }, (_, i) => hangingChain(`hang-${i}`)));
    const hangingCallers = hanging.map((record) => tagged(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })));
    // One host holds at most 6 of the 8 turns; the other 4 wait their turn.
    await until(() => hang.received.length >= 6, 'six refreshes at the hanging host');

    const healthy = await healthyChain();
    // Its portal just refused the stored access token: it needs a refresh now.
    const refreshing = tagged(h.coordinator.ensureFresh(view(healthy), { reason: 'expiring', rejectedToken: healthy.accessToken }));
    // Before: all 8 turns held by the hanging host, the healthy portal queued behind them for good.
    await until(() => refreshing.state() !== 'pending', 'the healthy portal refreshed while the other host hangs');
    expect((refreshing.value() as PortalRecord).accessToken).not.toBe(healthy.accessToken);
    expect(b24.stats.refreshSuccess).toBe(1);
    expect(hang.received).toHaveLength(6);
    expect(hangingCallers.map((c) => c.state())).toEqual(Array(10).fill('pending'));

    // oauthTimeoutMs later (by the clock), every caller has its typed error: the 6 sent and the 4
    // still waiting for a turn (before: the queued callers got nothing at all).
    await h.clock.advance(ANSWER_WAIT_MS + 1);
    await until(() => hangingCallers.every((c) => c.state() !== 'pending'), 'every hanging caller settled');
    expect(hangingCallers.map((c) => c.state())).toEqual(Array(10).fill('rejected'));
    for (const caller of hangingCallers) expect(caller.value()).toBeInstanceOf(OAuthUnavailableError);
    // The refreshes themselves go on (their answers would still be stored): still 6 at the host.
    expect(hang.received).toHaveLength(6);
  });

  it("one portal's many chains hold at most 2 turns: another portal on the same host gets one", async () => {
    const many = await Promise.all(Array.from({ length: 8 }, (_, i) => hangingChain('busy', i === 0 ? 'portal' : `user:${i}`, i)));
    const manyCallers = many.map((record) => tagged(h.coordinator.ensureFresh(view(record), { reason: 'expiring' })));
    await until(() => hang.received.length >= 2, "two of the busy portal's refreshes at the host");

    const other = await hangingChain('quiet');
    const otherCaller = tagged(h.coordinator.ensureFresh(view(other), { reason: 'expiring' }));
    await until(() => hang.received.includes(other.refreshToken), "the quiet portal's refresh at the host");

    // Before: the busy portal's 8 chains took all 8 turns, the quiet portal's request never left.
    expect(hang.received.filter((token) => token.includes('-busy-'))).toHaveLength(2);
    expect(hang.received[2]).toBe(other.refreshToken);
    await h.clock.advance(ANSWER_WAIT_MS + 1);
    await until(() => [...manyCallers, otherCaller].every((c) => c.state() === 'rejected'), 'every caller settled');
  });

  it('the sweep is not stalled: keep-alives of chains at a hanging host report failed after oauthTimeoutMs', async () => {
    const hanging = await Promise.all(Array.from({ length: 10 }, (_, i) => hangingChain(`idle-${i}`)));
    const kept = hanging.map((record) => tagged(h.coordinator.keepAlive(record, 0)));
    await until(() => hang.received.length >= 6, 'six keep-alives at the hanging host');
    await h.clock.advance(ANSWER_WAIT_MS + 1);
    // Before: the sweep waited for each of them until the 180 s hard cap.
    await until(() => kept.every((k) => k.state() === 'resolved'), 'every keep-alive settled');
    expect(kept.map((k) => (k.value() as { outcome: string }).outcome)).toEqual(Array(10).fill('failed'));
    expect(hang.received).toHaveLength(6);
    // The host has held all its turns past oauthTimeoutMs: later keep-alives for it queue nothing.
    const more = await Promise.all(Array.from({ length: 5 }, (_, i) => hangingChain(`later-${i}`)));
    const outcomes = await Promise.all(more.map((record) => h.coordinator.keepAlive(record, 0)));
    expect(outcomes.map((o) => o.outcome)).toEqual(Array(5).fill('failed'));
    expect(more.map((record) => h.coordinator.flight(record.memberId, 'portal'))).toEqual(Array(5).fill(undefined));
    // A chain on a healthy host is still kept alive.
    const healthy = await healthyChain();
    h.clock.set(h.clock.now() + 1); // its record was written at the clock's time: now it is idle
    expect((await h.coordinator.keepAlive(healthy, 0)).outcome).toBe('refreshed');
    expect(hang.received).toHaveLength(6);
  });
});
