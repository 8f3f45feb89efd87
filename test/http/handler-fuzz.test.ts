// 1,000 malformed, random, truncated, oversize or wrongly typed bodies over real HTTP: every one is
// answered 400, 413 or 415, the server stays up, the store does not change, no secret is echoed.

import { createServer } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLifecycleHandler } from '../../src/http/handler.js';
import { toNodeHandler } from '../../src/http/node.js';
import { listen, post, startRig, toForm, type Rig } from './helpers.js';

const LIMIT = 4096;
const CASES = 1000;

let rig: Rig;
let server: { url: string; close: () => Promise<void> };

beforeAll(async () => {
  rig = await startRig();
  const handler = createLifecycleHandler({ pool: rig.context, trustedOAuthHosts: [rig.b24.oauthUrl], maxBodyBytes: LIMIT });
  server = await listen(createServer(toNodeHandler(handler)));
});

afterAll(async () => {
  await server.close();
  await rig.pool.close();
  await rig.b24.close();
});

interface Case {
  readonly kind: string;
  readonly body: Uint8Array | string;
  readonly contentType: string | null;
}

describe('the handler under hostile input', () => {
  it(`answers ${CASES} malformed bodies with 400, 413 or 415 and changes nothing`, async () => {
    // A stored portal whose record must come through byte for byte.
    const stored = rig.b24.addPortal();
    const installEvent = rig.b24.installEvent(stored.memberId);
    expect((await post(`${server.url}/e`, installEvent.form)).status).toBe(200);
    const snapshot = JSON.stringify(await rig.store.list!({}));

    // A real install body with member_id last: any cut before its value leaves the event without one.
    const { member_id: memberId, ...authRest } = rig.b24.installEvent(stored.memberId).payload.auth;
    const template = toForm({ ...installEvent.payload, auth: { ...authRest, member_id: memberId! } });
    const lastValueAt = template.lastIndexOf('=') + 1;
    const jsonTemplate = installEvent.json;

    const formTypes = fc.constantFrom<string | null>('application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8', null);
    const badTypes = fc.constantFrom('text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/octet-stream', 'image/png', 'text/html; charset=utf-8');
    const cases: fc.Arbitrary<Case> = fc.oneof(
      fc.record({ kind: fc.constant('random bytes'), body: fc.uint8Array({ maxLength: 3000 }), contentType: formTypes }),
      fc.record({ kind: fc.constant('random text'), body: fc.string({ unit: 'binary', maxLength: 1500 }), contentType: formTypes }),
      fc.record({
        kind: fc.constant('truncated form'),
        body: fc.integer({ min: 0, max: lastValueAt }).map((cut) => template.slice(0, cut)),
        contentType: formTypes,
      }),
      fc.record({
        kind: fc.constant('truncated JSON'),
        body: fc.integer({ min: 0, max: jsonTemplate.length - 1 }).map((cut) => jsonTemplate.slice(0, cut)),
        contentType: fc.constant('application/json'),
      }),
      fc.record({ kind: fc.constant('random JSON'), body: fc.json({ maxDepth: 4 }), contentType: fc.constant('application/json') }),
      fc.record({
        kind: fc.constant('pollution'),
        body: fc
          .constantFrom('__proto__', 'constructor', 'prototype')
          .chain((key) => fc.constantFrom(`auth[${key}][x]=1&event=ONAPPINSTALL`, `${key}[event]=ONAPPINSTALL`, `event=ONAPPINSTALL&data[${key}]=1&auth[member_id]=${key}`)),
        contentType: formTypes,
      }),
      fc.record({ kind: fc.constant('wrong content type'), body: fc.constant(template), contentType: badTypes }),
      fc.record({
        kind: fc.constant('oversize'),
        body: fc.integer({ min: LIMIT + 1, max: LIMIT * 4 }).map((size) => `${template}&pad=${'x'.repeat(size)}`),
        contentType: formTypes,
      }),
      fc.record({
        kind: fc.constant('duplicate keys'),
        body: fc.constantFrom(`${template}&auth[member_id]=other`, `event=ONAPPUNINSTALL&${template}`),
        contentType: formTypes,
      }),
    );
    const samples = fc.sample(cases, { numRuns: CASES, seed: 20260402 });
    expect(samples).toHaveLength(CASES);

    const unexpected: string[] = [];
    const answers: string[] = [];
    const kinds = new Map<string, number>();
    for (let i = 0; i < samples.length; i += 25) {
      await Promise.all(
        samples.slice(i, i + 25).map(async (sample) => {
          const answer = await post(`${server.url}/e`, sample.body, sample.contentType);
          answers.push(answer.text);
          kinds.set(sample.kind, (kinds.get(sample.kind) ?? 0) + 1);
          if (![400, 413, 415].includes(answer.status)) unexpected.push(`${sample.kind} -> ${answer.status} ${answer.text}`);
        }),
      );
    }

    expect(unexpected).toEqual([]);
    expect(kinds.size).toBe(9);
    expect(JSON.stringify(await rig.store.list!({}))).toBe(snapshot);
    expect(rig.b24.stats.appInfoCalls).toBe(1);
    // Still up, and still doing its job.
    const another = rig.b24.addPortal();
    expect((await post(`${server.url}/e`, rig.b24.installEvent(another.memberId).form)).status).toBe(200);
    // No answer echoes a value it was sent.
    for (const text of answers) expect(Object.keys(JSON.parse(text) as object).sort()).toEqual(expect.arrayContaining(['error']));
    const secrets = [installEvent.chain.accessToken, installEvent.chain.refreshToken, stored.applicationToken];
    expect(answers.filter((text) => secrets.some((s) => text.includes(s)))).toEqual([]);
  });
});
