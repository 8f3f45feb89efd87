// 1,000 malformed, random, truncated, oversize, forged or wrongly typed REST event bodies over real HTTP:
// every one is answered 4xx, the server stays up, no listener runs, the store does not change.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createEventHandler } from '../../src/http/events.js';
import { seedStore } from '../../src/testing/fake-bitrix24.js';
import { formTypes, garbledCases, hostileCases, LIMIT, sendAll, serveFuzzed, type Case } from './fuzz-rig.js';
import { post, toForm } from './helpers.js';

const CASES = 1000;

let listenerCalls = 0;

const fuzz = serveFuzzed((rig) =>
  createEventHandler({
    pool: rig.pool,
    maxBodyBytes: LIMIT,
    on: { ONCRMDEALADD: () => void (listenerCalls += 1), ONTASKADD: () => void (listenerCalls += 1) },
  }),
);

describe('the event handler under hostile input', () => {
  it(`answers ${CASES} malformed or forged bodies with 4xx, runs no listener and changes nothing`, async () => {
    const { rig } = fuzz;
    const portal = rig.b24.addPortal();
    await seedStore(rig.store, rig.b24, portal.memberId);
    const snapshot = JSON.stringify(await rig.store.list!({}));
    const genuine = rig.b24.restEvent(portal.memberId, 'ONCRMDEALADD', { FIELDS: { ID: '7', TITLE: 'x' } });

    // member_id last: any cut before its value leaves the event without one.
    const { member_id: memberId, application_token: appToken, ...authRest } = genuine.payload.auth;
    const template = toForm({ ...genuine.payload, data: { ID: '7' }, auth: { ...authRest, application_token: appToken!, member_id: memberId! } });

    const badTypes = ['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/octet-stream'];
    const hex = fc.stringMatching(/^[0-9a-f]{32}$/);
    const cases: fc.Arbitrary<Case> = fc.oneof(
      ...garbledCases(template, genuine.json),
      fc.record({
        kind: fc.constant('forged token'),
        body: hex.map((token) => genuine.form.replace(portal.applicationToken, token)),
        contentType: formTypes,
      }),
      fc.record({
        kind: fc.constant('unknown portal'),
        body: hex.map((member) => genuine.form.replace(portal.memberId, member)),
        contentType: formTypes,
      }),
      ...hostileCases('ONCRMDEALADD', genuine.form, badTypes, [
        `${genuine.form}&auth[member_id]=other`,
        `event=ONTASKADD&${genuine.form}`,
        `${genuine.form}&auth[application_token]=x`,
      ]),
    );
    const samples = fc.sample(cases, { numRuns: CASES, seed: 20261128 });
    expect(samples).toHaveLength(CASES);

    const { unexpected, answers, kinds } = await sendAll(`${fuzz.url}/e`, samples, [400, 403, 413, 415]);

    expect(unexpected).toEqual([]);
    expect(kinds.size).toBe(11);
    expect(listenerCalls).toBe(0);
    expect(rig.b24.stats.restByMethod['profile'] ?? 0).toBe(0);
    expect(JSON.stringify(await rig.store.list!({}))).toBe(snapshot);
    // Still up, and still doing its job.
    expect((await post(`${fuzz.url}/e`, genuine.form)).status).toBe(200);
    expect(listenerCalls).toBe(1);
    // No answer echoes a value it was sent.
    const secrets = [genuine.chain.accessToken, genuine.chain.refreshToken, portal.applicationToken];
    expect(answers.filter((text) => secrets.some((s) => text.includes(s)))).toEqual([]);
  });
});
