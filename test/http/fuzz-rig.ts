// What the handler fuzz tests share: one handler served over real HTTP on a rig, the shape of a
// generated case, the case kinds every one of them draws (garbled bodies first, hostile ones last),
// and the sending of the samples 25 at a time.

import { createServer } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll } from 'vitest';
import { toNodeHandler } from '../../src/http/node.js';
import type { PlainHandler } from '../../src/plain.js';
import { listen, post, startRig, type Rig } from './helpers.js';

/** The body limit of the handler under test. */
export const LIMIT = 4096;

/** One generated request. */
export interface Case {
  readonly kind: string;
  readonly body: Uint8Array | string;
  readonly contentType: string | null;
  /** A forged install or update for the stored portal with a `ts` older than the stored one. */
  readonly stale?: boolean;
}

/** The rig and the base URL of the served handler, once the file's `beforeAll` ran. */
export interface FuzzServer {
  readonly rig: Rig;
  readonly url: string;
}

/**
 * Registers the file's hooks: before it, a rig and a server for the handler `build` makes on it;
 * after it, the server, the pool and the stand-in are closed.
 */
export function serveFuzzed(build: (rig: Rig) => PlainHandler): FuzzServer {
  const served = {} as { rig: Rig; url: string; close: () => Promise<void> };
  beforeAll(async () => {
    served.rig = await startRig();
    const server = await listen(createServer(toNodeHandler(build(served.rig))));
    served.url = server.url;
    served.close = server.close;
  });
  afterAll(async () => {
    await served.close();
    await served.rig.pool.close();
    await served.rig.b24.close();
  });
  return served;
}

/** The content types a form body is sent with (none, at times). */
export const formTypes = fc.constantFrom<string | null>('application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8', null);

/**
 * Random bytes and text, `form` cut anywhere before its last value (put `member_id` last, so every
 * cut loses it), `json` cut anywhere, and random JSON.
 */
export function garbledCases(form: string, json: string): fc.Arbitrary<Case>[] {
  const lastValueAt = form.lastIndexOf('=') + 1;
  return [
    fc.record({ kind: fc.constant('random bytes'), body: fc.uint8Array({ maxLength: 3000 }), contentType: formTypes }),
    fc.record({ kind: fc.constant('random text'), body: fc.string({ unit: 'binary', maxLength: 1500 }), contentType: formTypes }),
    fc.record({
      kind: fc.constant('truncated form'),
      body: fc.integer({ min: 0, max: lastValueAt }).map((cut) => form.slice(0, cut)),
      contentType: formTypes,
    }),
    fc.record({
      kind: fc.constant('truncated JSON'),
      body: fc.integer({ min: 0, max: json.length - 1 }).map((cut) => json.slice(0, cut)),
      contentType: fc.constant('application/json'),
    }),
    fc.record({ kind: fc.constant('random JSON'), body: fc.json({ maxDepth: 4 }), contentType: fc.constant('application/json') }),
  ];
}

/**
 * Prototype pollution in the shape of an `event` body, `form` under each of `badTypes`, `form`
 * padded past {@link LIMIT}, and each of `duplicates` (bodies with a key given twice).
 */
export function hostileCases(
  event: string,
  form: string,
  badTypes: readonly string[],
  duplicates: readonly string[],
): fc.Arbitrary<Case>[] {
  return [
    fc.record({
      kind: fc.constant('pollution'),
      body: fc
        .constantFrom('__proto__', 'constructor', 'prototype')
        .chain((key) => fc.constantFrom(`auth[${key}][x]=1&event=${event}`, `${key}[event]=${event}`, `event=${event}&data[${key}]=1&auth[member_id]=${key}`)),
      contentType: formTypes,
    }),
    fc.record({ kind: fc.constant('wrong content type'), body: fc.constant(form), contentType: fc.constantFrom(...badTypes) }),
    fc.record({
      kind: fc.constant('oversize'),
      body: fc.integer({ min: LIMIT + 1, max: LIMIT * 4 }).map((size) => `${form}&pad=${'x'.repeat(size)}`),
      contentType: formTypes,
    }),
    fc.record({ kind: fc.constant('duplicate keys'), body: fc.constantFrom(...duplicates), contentType: formTypes }),
  ];
}

/** What {@link sendAll} heard. */
export interface Answers {
  /** Every answer whose status was not expected, as `kind -> status text`. */
  readonly unexpected: string[];
  /** Every answer's body. */
  readonly answers: string[];
  /** How many samples of each kind were sent. */
  readonly kinds: Map<string, number>;
}

/** POSTs every sample to `url`, 25 at a time, and notes each answer whose status is not in `expected`. */
export async function sendAll(url: string, samples: readonly Case[], expected: readonly number[]): Promise<Answers> {
  const unexpected: string[] = [];
  const answers: string[] = [];
  const kinds = new Map<string, number>();
  for (let i = 0; i < samples.length; i += 25) {
    await Promise.all(
      samples.slice(i, i + 25).map(async (sample) => {
        const answer = await post(url, sample.body, sample.contentType);
        answers.push(answer.text);
        kinds.set(sample.kind, (kinds.get(sample.kind) ?? 0) + 1);
        if (!expected.includes(answer.status)) unexpected.push(`${sample.kind} -> ${answer.status} ${answer.text}`);
      }),
    );
  }
  return { unexpected, answers, kinds };
}
