// createEventHandler over real HTTP against the stand-in Bitrix24: genuine events of three portals reach
// the right listener with the right portal's client; forged events get 403, run nothing and change nothing.

import { createServer } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEventHandler, type RestEventContext } from '../../src/index.js';
import { toNodeHandler } from '../../src/http/node.js';
import { seedStore } from '../../src/testing/fake-bitrix24.js';
import type { FakePortal } from '../../src/testing/fake-bitrix24.js';
import { listen, post, startRig, type Rig } from './helpers.js';

let rig: Rig;
let server: { url: string; close: () => Promise<void> };
let calls: { memberId: string; event: string; data: unknown; profileName: unknown; profileId: unknown }[];
let portals: FakePortal[];

beforeEach(async () => {
  rig = await startRig();
  calls = [];
  const handler = createEventHandler({
    pool: rig.pool,
    on: {
      ONCRMDEALADD: async ({ memberId, event, data, b24 }: RestEventContext) => {
        const answer = await b24.actions.v2.call.make<{ NAME: string; ID: string }>({ method: 'profile' });
        const profile = answer.getData()?.result;
        calls.push({ memberId, event, data: JSON.parse(JSON.stringify(data)), profileName: profile?.NAME, profileId: profile?.ID });
      },
    },
  });
  server = await listen(createServer(toNodeHandler(handler)));
  portals = [];
  for (const name of ['Anna', 'Boris', 'Chen']) {
    const portal = rig.b24.addPortal({ userName: name });
    await seedStore(rig.store, rig.b24, portal.memberId);
    portals.push(portal);
  }
  for (const portal of portals) rig.secrets.add(portal.applicationToken);
});

afterEach(async () => {
  await server.close();
  await rig.pool.close();
  await rig.b24.close();
});

/** Every record of the store, as text, to compare before and after. */
async function snapshot(): Promise<string> {
  return JSON.stringify((await rig.store.list!({})).records);
}

describe('genuine events', () => {
  it("reach the listener of each of three portals with that portal's client", async () => {
    const bodies = portals.map((portal, i) => {
      // Fired by an ordinary user (7): the event's own chain is that user's, not the installer's.
      const event = rig.b24.restEvent(portal.memberId, 'ONCRMDEALADD', { FIELDS: { ID: 100 + i } }, { userId: 7 });
      rig.secrets.add(event.chain.accessToken, event.chain.refreshToken);
      return { event, body: i === 1 ? event.json : event.form, type: i === 1 ? 'application/json' : 'application/x-www-form-urlencoded' };
    });
    const before = await snapshot();
    const answers = await Promise.all(bodies.map(({ body, type }) => post(`${server.url}/events`, body, type)));
    expect(answers.map((a) => [a.status, a.json])).toEqual(portals.map(() => [200, { ok: true }]));

    const byPortal = new Map(calls.map((call) => [call.memberId, call]));
    expect(calls).toHaveLength(3);
    portals.forEach((portal, i) => {
      expect(byPortal.get(portal.memberId)).toEqual({
        memberId: portal.memberId,
        event: 'ONCRMDEALADD',
        data: { FIELDS: { ID: String(100 + i) } },
        profileName: ['Anna', 'Boris', 'Chen'][i],
        // The pooled client acts as the installer, never as the event's user 7.
        profileId: String(portal.adminUserId),
      });
    });
    expect(rig.b24.stats.restByMethod['profile']).toBe(3);
    // The events' chains were neither stored nor used.
    expect(await snapshot()).toBe(before);
    for (const { event } of bodies) expect(before).not.toContain(event.chain.accessToken);
    expect(rig.secrets.leakedIn(rig.logger.lines.join('\n'))).toEqual([]);
  });

  it('takes an event without server_endpoint, expires, user_id or tokens (only member_id and application_token)', async () => {
    const portal = portals[2]!;
    const omit = ['server_endpoint', 'expires', 'user_id', 'access_token', 'refresh_token', 'client_endpoint', 'domain', 'scope', 'status', 'expires_in'];
    const event = rig.b24.restEvent(portal.memberId, 'ONCRMDEALADD', { FIELDS: { ID: '9' } }, { omitAuthFields: omit });
    const answer = await post(`${server.url}/events`, event.form);
    expect([answer.status, answer.json]).toEqual([200, { ok: true }]);
    expect(calls.map((call) => [call.memberId, call.profileName])).toEqual([[portal.memberId, 'Chen']]);
  });

  it('answers 200 and logs at debug level for an authentic event without a listener', async () => {
    const portal = portals[0]!;
    const answer = await post(`${server.url}/events`, rig.b24.restEvent(portal.memberId, 'ONTASKADD', { FIELDS_AFTER: { ID: '1' } }).form);
    expect([answer.status, answer.json]).toEqual([200, { ok: true }]);
    expect(calls).toEqual([]);
    expect(rig.logger.lines.some((line) => line.includes('"level":"debug"') && line.includes('ONTASKADD') && line.includes(portal.memberId))).toBe(true);
  });
});

describe('forged events', () => {
  it.each([
    ['a wrong application_token', (p: FakePortal[]) => ({ member: p[0]!.memberId, token: 'f'.repeat(32) }), 'application_token_mismatch'],
    ["another portal's application_token", (p: FakePortal[]) => ({ member: p[0]!.memberId, token: p[1]!.applicationToken }), 'application_token_mismatch'],
    ['an unknown member_id', (p: FakePortal[]) => ({ member: 'f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0', token: p[0]!.applicationToken }), 'unknown_portal'],
  ])('answers 403 for %s, runs nothing, changes nothing', async (_name, forge, reason) => {
    const { member, token } = forge(portals);
    const genuine = rig.b24.restEvent(portals[0]!.memberId, 'ONCRMDEALADD', { FIELDS: { ID: '1' } });
    const forged = { ...genuine.payload, auth: { ...genuine.payload.auth, member_id: member, application_token: token } };
    const before = await snapshot();
    for (const [body, type] of [
      [new URLSearchParams(flatten(forged)).toString(), 'application/x-www-form-urlencoded'],
      [JSON.stringify(forged), 'application/json'],
    ] as const) {
      const answer = await post(`${server.url}/events`, body, type);
      expect([answer.status, answer.json]).toEqual([403, { error: 'VERIFICATION_FAILED' }]);
    }
    expect(calls).toEqual([]);
    expect(rig.b24.stats.restByMethod['profile'] ?? 0).toBe(0);
    expect(await snapshot()).toBe(before);
    const warnings = rig.logger.lines.filter((line) => line.includes('"level":"warn"') && line.includes(reason));
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain(member);
    expect(rig.secrets.leakedIn(rig.logger.lines.join('\n'))).toEqual([]);
  });

  it.each([
    ['revoked', { state: 'revoked', revokedReason: 'invalid_grant', revokedAt: 1 }, 'portal_revoked'],
    ['suspended', { state: 'suspended', revokedReason: 'PAYMENT_REQUIRED', revokedAt: 1 }, 'portal_suspended'],
    ['stored without an application_token', { applicationToken: null }, 'no_stored_application_token'],
  ] as const)('answers 403 for a portal %s, even with its own application_token', async (_name, record, reason) => {
    const portal = rig.b24.addPortal({ userName: 'Dora' });
    await seedStore(rig.store, rig.b24, portal.memberId, { record });
    const before = await snapshot();
    const answer = await post(`${server.url}/events`, rig.b24.restEvent(portal.memberId, 'ONCRMDEALADD', { FIELDS: { ID: '1' } }).form);
    expect([answer.status, answer.json]).toEqual([403, { error: 'VERIFICATION_FAILED' }]);
    expect(calls).toEqual([]);
    expect(await snapshot()).toBe(before);
    expect(rig.logger.lines.some((line) => line.includes(reason) && line.includes(portal.memberId))).toBe(true);
  });
});

/** A nested payload as flat bracket keys. */
function flatten(payload: Readonly<Record<string, unknown>>, prefix = ''): [string, string][] {
  return Object.entries(payload).flatMap(([key, value]) => {
    const name = prefix === '' ? key : `${prefix}[${key}]`;
    return value !== null && typeof value === 'object' ? flatten(value as Record<string, unknown>, name) : [[name, String(value)] as [string, string]];
  });
}
