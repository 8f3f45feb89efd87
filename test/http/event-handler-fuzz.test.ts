// 1,000 malformed, random, truncated, oversize, forged or wrongly typed REST event bodies over real HTTP:
// every one is answered 4xx, the server stays up, no listener runs, the store does not change.

import { createServer } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventHandler } from '../../src/http/events.js';
import { toNodeHandler } from '../../src/http/node.js';
import { seedStore } from '../../src/testing/fake-bitrix24.js';
import { listen, post, startRig, toForm, type Rig } from './helpers.js';

const LIMIT = 4096;
const CASES = 1000;

let rig: Rig;
let server: { url: string; close: () => Promise<void> };
let listenerCalls = 0;

beforeAll(async () => {
  rig = await startRig();
  const handler = createEventHandler({
    pool: rig.pool,
    maxBodyBytes: LIMIT,
    on: { ONCRMDEALADD: () => void (listenerCalls += 1), ONTASKADD: () => void (listenerCalls += 1) },
  });
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

describe('the event handler under hostile input', () => {
  it(`answers ${CASES} malformed or forged bodies with 4xx, runs no listener and changes nothing`, async () => {
    const portal = rig.b24.addPortal();
    await seedStore(rig.store, rig.b24, portal.memberId);
    const snapshot = JSON.stringify(await rig.store.list!({}));
    const genuine = rig.b24.restEvent(portal.memberId, 'ONCRMDEALADD', { FIELDS: { ID: '7', TITLE: 'x' } });

    // member_id last: any cut before its value leaves the event without one.
    const { member_id: memberId, application_token: appToken, ...authRest } = genuine.payload.auth;
    const template = toForm({ ...genuine.payload, data: { ID: '7' }, auth: { ...authRest, application_token: appToken!, member_id: memberId! } });
    const lastValueAt = template.lastIndexOf('=') + 1;
    const jsonTemplate = genuine.json;

    const formTypes = fc.constantFrom<string | null>('application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8', null);
    const badTypes = fc.constantFrom('text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/octet-stream');
    const hex = fc.stringMatching(/^[0-9a-f]{32}$/);
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
        kind: fc.constant('forged token'),
        body: hex.map((token) => genuine.form.replace(portal.applicationToken, token)),
        contentType: formTypes,
      }),
      fc.record({
        kind: fc.constant('unknown portal'),
        body: hex.map((member) => genuine.form.replace(portal.memberId, member)),
        contentType: formTypes,
      }),
      fc.record({
        kind: fc.constant('pollution'),
        body: fc
          .constantFrom('__proto__', 'constructor', 'prototype')
          .chain((key) => fc.constantFrom(`auth[${key}][x]=1&event=ONCRMDEALADD`, `${key}[event]=ONCRMDEALADD`, `event=ONCRMDEALADD&data[${key}]=1&auth[member_id]=${key}`)),
        contentType: formTypes,
      }),
      fc.record({ kind: fc.constant('wrong content type'), body: fc.constant(genuine.form), contentType: badTypes }),
      fc.record({
        kind: fc.constant('oversize'),
        body: fc.integer({ min: LIMIT + 1, max: LIMIT * 4 }).map((size) => `${genuine.form}&pad=${'x'.repeat(size)}`),
        contentType: formTypes,
      }),
      fc.record({
        kind: fc.constant('duplicate keys'),
        body: fc.constantFrom(`${genuine.form}&auth[member_id]=other`, `event=ONTASKADD&${genuine.form}`, `${genuine.form}&auth[application_token]=x`),
        contentType: formTypes,
      }),
    );
    const samples = fc.sample(cases, { numRuns: CASES, seed: 20261128 });
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
          if (![400, 403, 413, 415].includes(answer.status)) unexpected.push(`${sample.kind} -> ${answer.status} ${answer.text}`);
        }),
      );
    }

    expect(unexpected).toEqual([]);
    expect(kinds.size).toBe(11);
    expect(listenerCalls).toBe(0);
    expect(rig.b24.stats.restByMethod['profile'] ?? 0).toBe(0);
    expect(JSON.stringify(await rig.store.list!({}))).toBe(snapshot);
    // Still up, and still doing its job.
    expect((await post(`${server.url}/e`, genuine.form)).status).toBe(200);
    expect(listenerCalls).toBe(1);
    // No answer echoes a value it was sent.
    const secrets = [genuine.chain.accessToken, genuine.chain.refreshToken, portal.applicationToken];
    expect(answers.filter((text) => secrets.some((s) => text.includes(s)))).toEqual([]);
  });
});
