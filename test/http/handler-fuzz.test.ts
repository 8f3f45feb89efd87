// 1,000 malformed, random, truncated, oversize or wrongly typed bodies over real HTTP: every one is
// answered 400, 413 or 415, the server stays up, the store does not change, no secret is echoed.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createLifecycleHandler } from '../../src/http/handler.js';
import { garbledCases, hostileCases, LIMIT, sendAll, serveFuzzed, type Case } from './fuzz-rig.js';
import { post, toForm } from './helpers.js';

const CASES = 1000;

const fuzz = serveFuzzed((rig) => createLifecycleHandler({ pool: rig.context, trustedOAuthHosts: [rig.b24.oauthUrl], maxBodyBytes: LIMIT }));

describe('the handler under hostile input', () => {
  it(`answers ${CASES} malformed bodies with 400, 413 or 415 and changes nothing`, async () => {
    const { rig } = fuzz;
    // A stored portal whose record must come through byte for byte.
    const stored = rig.b24.addPortal();
    const installEvent = rig.b24.installEvent(stored.memberId);
    expect((await post(`${fuzz.url}/e`, installEvent.form)).status).toBe(200);
    const snapshot = JSON.stringify(await rig.store.list!({}));

    // A real install body with member_id last: any cut before its value leaves the event without one.
    const { member_id: memberId, ...authRest } = rig.b24.installEvent(stored.memberId).payload.auth;
    const template = toForm({ ...installEvent.payload, auth: { ...authRest, member_id: memberId! } });

    const badTypes = ['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/octet-stream', 'image/png', 'text/html; charset=utf-8'];
    const cases: fc.Arbitrary<Case> = fc.oneof(
      ...garbledCases(template, installEvent.json),
      ...hostileCases('ONAPPINSTALL', template, badTypes, [`${template}&auth[member_id]=other`, `event=ONAPPUNINSTALL&${template}`]),
    );
    const samples = fc.sample(cases, { numRuns: CASES, seed: 20260402 });
    expect(samples).toHaveLength(CASES);

    const { unexpected, answers, kinds } = await sendAll(`${fuzz.url}/e`, samples, [400, 413, 415]);

    expect(unexpected).toEqual([]);
    expect(kinds.size).toBe(9);
    expect(JSON.stringify(await rig.store.list!({}))).toBe(snapshot);
    expect(rig.b24.stats.appInfoCalls).toBe(1);
    // Still up, and still doing its job.
    const another = rig.b24.addPortal();
    expect((await post(`${fuzz.url}/e`, rig.b24.installEvent(another.memberId).form)).status).toBe(200);
    // No answer echoes a value it was sent.
    for (const text of answers) expect(Object.keys(JSON.parse(text) as object).sort()).toEqual(expect.arrayContaining(['error']));
    const secrets = [installEvent.chain.accessToken, installEvent.chain.refreshToken, stored.applicationToken];
    expect(answers.filter((text) => secrets.some((s) => text.includes(s)))).toEqual([]);
  });
});
