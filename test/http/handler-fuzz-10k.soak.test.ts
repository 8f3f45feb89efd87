// 10,000 generated bodies at the lifecycle handler over real HTTP (keep-alive, 50 in flight):
// malformed, random, truncated, oversize, wrongly typed, polluted, and well-formed but forged
// (installs with tokens the OAuth host never issued, uninstalls with a wrong application_token).
// Every answer is 4xx, the server stays up, the store does not change.
//
// Seeded and replayable: the seed is printed; B24PT_FUZZ_SEED=<seed> replays a run,
// B24PT_FUZZ_CASES=<n> changes the count.

import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createLifecycleHandler } from '../../src/http/handler.js';
import { formTypes, garbledCases, hostileCases, LIMIT, serveFuzzed, type Case } from './fuzz-rig.js';
import { post, toForm } from './helpers.js';

const CASES = Number(process.env['B24PT_FUZZ_CASES'] ?? 10_000);
const SEED = process.env['B24PT_FUZZ_SEED'] === undefined ? randomBytes(4).readUInt32BE() >>> 1 : Number(process.env['B24PT_FUZZ_SEED']);
const IN_FLIGHT = 50;

const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });

const fuzz = serveFuzzed((rig) => createLifecycleHandler({ pool: rig.context, trustedOAuthHosts: [rig.b24.oauthUrl], maxBodyBytes: LIMIT }));

afterAll(() => {
  agent.destroy();
});

/** One POST on the keep-alive agent; the answer is kept even when the server closes early (413). */
function send(url: string, sample: Case): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const headers: Record<string, string> = sample.contentType === null ? {} : { 'content-type': sample.contentType };
    const req = request(url, { method: 'POST', agent, headers }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    req.end(sample.body);
  });
}

const hex = (bytes: number): fc.Arbitrary<string> => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString('hex'));

describe(`the lifecycle handler under ${CASES} generated bodies (seed ${SEED})`, () => {
  it('answers every one 4xx, stays up and changes nothing in the store', async () => {
    console.log(`[handler-fuzz-10k] seed ${SEED}: replay with B24PT_FUZZ_SEED=${SEED}`);
    const { rig } = fuzz;
    const stored = rig.b24.addPortal();
    const installEvent = rig.b24.installEvent(stored.memberId);
    expect((await post(`${fuzz.url}/e`, installEvent.form)).status).toBe(200);
    const snapshot = JSON.stringify(await rig.store.list!({}));
    const storedTs = (await rig.store.get(stored.memberId))?.eventTs ?? null;
    const appInfoCalls = rig.b24.stats.appInfoCalls;

    // Templates from a genuine event whose chain is then spent, so no template carries a live token.
    const genuine = rig.b24.installEvent(stored.memberId);
    const { member_id: memberId, ...authRest } = genuine.payload.auth;
    const template = toForm({ ...genuine.payload, auth: { ...authRest, member_id: memberId! } });
    const uninstall = rig.b24.uninstallEvent(stored.memberId).payload;

    const badTypes = ['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/octet-stream', 'image/png'];
    const authKeys = Object.keys(genuine.payload.auth);
    const forgedInstall = fc
      .record({
        accessToken: hex(35),
        refreshToken: hex(35),
        applicationToken: hex(16),
        member: fc.oneof(fc.constant(stored.memberId), hex(16)),
        event: fc.constantFrom('ONAPPINSTALL', 'ONAPPUPDATE'),
        mutate: fc.option(fc.tuple(fc.constantFrom(...authKeys.filter((k) => !k.endsWith('token'))), fc.string({ maxLength: 40 })), { nil: undefined }),
        ts: fc.option(fc.integer({ min: -1, max: 4_000_000_000 }), { nil: undefined }),
      })
      .map(({ accessToken, refreshToken, applicationToken, member, event, mutate, ts }) => {
        const auth: Record<string, string> = {
          ...genuine.payload.auth,
          access_token: accessToken,
          refresh_token: refreshToken,
          application_token: applicationToken,
          member_id: member,
        };
        if (mutate !== undefined && mutate[0] !== 'member_id') auth[mutate[0]] = mutate[1];
        const payload = { ...genuine.payload, event, ...(ts === undefined ? {} : { ts: String(ts) }), auth };
        const stale = member === stored.memberId && storedTs !== null && Number(payload.ts) < storedTs;
        return { payload, stale };
      });

    const cases: fc.Arbitrary<Case> = fc.oneof(
      ...garbledCases(template, genuine.json),
      fc.record({
        kind: fc.constant('random form keys'),
        body: fc
          .array(fc.tuple(fc.constantFrom('event', 'auth[member_id]', 'auth[access_token]', 'data[VERSION]', 'auth[__proto__]', 'auth[][]', 'ts', 'auth'), fc.string({ maxLength: 30 })), { maxLength: 12 })
          .map((pairs) => new URLSearchParams(pairs).toString()),
        contentType: formTypes,
      }),
      ...hostileCases('ONAPPINSTALL', template, badTypes, [`${template}&auth[member_id]=other`, `event=ONAPPUNINSTALL&${template}`]),
      fc
        .record({ forged: forgedInstall, contentType: formTypes })
        .map(({ forged, contentType }) => ({ kind: 'forged install (form)', body: toForm(forged.payload), contentType, stale: forged.stale })),
      fc
        .record({ forged: forgedInstall })
        .map(({ forged }) => ({ kind: 'forged install (JSON)', body: JSON.stringify(forged.payload), contentType: 'application/json', stale: forged.stale })),
      fc.record({
        kind: fc.constant('forged uninstall'),
        body: hex(16).map((token) => toForm({ ...uninstall, auth: { ...uninstall.auth, application_token: token } })),
        contentType: formTypes,
      }),
    );
    const generating = performance.now();
    const samples = fc.sample(cases, { numRuns: CASES, seed: SEED });
    const generatedMs = Math.round(performance.now() - generating);
    const sending = performance.now();
    expect(samples).toHaveLength(CASES);

    const unexpected: string[] = [];
    const kinds = new Map<string, number>();
    const spent = new Map<string, number>();
    let staleAcknowledged = 0;
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < samples.length) {
        const index = next++;
        const sample = samples[index]!;
        const started = performance.now();
        const answer = await send(`${fuzz.url}/e`, sample);
        kinds.set(sample.kind, (kinds.get(sample.kind) ?? 0) + 1);
        spent.set(sample.kind, (spent.get(sample.kind) ?? 0) + performance.now() - started);
        const body = (() => {
          try {
            return JSON.parse(answer.text) as Record<string, unknown>;
          } catch {
            return undefined;
          }
        })();
        // Every event is proven before its age is looked at, so a forged one is refused whatever its
        // ts: the answer never tells whether a portal is installed.
        if (sample.stale === true && answer.status === 200) staleAcknowledged++;
        if (answer.status < 400 || answer.status > 499 || typeof body?.['error'] !== 'string') {
          unexpected.push(`#${index} ${sample.kind} -> ${answer.status} ${answer.text.slice(0, 200)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
    console.log(`[handler-fuzz-10k] generated in ${generatedMs} ms, sent in ${Math.round(performance.now() - sending)} ms`);
    expect(staleAcknowledged, 'a forged event older than the stored one is refused like any other').toBe(0);
    console.log(`[handler-fuzz-10k] cases by kind: ${JSON.stringify(Object.fromEntries([...kinds].map(([k, n]) => [k, { n, msInFlight: Math.round(spent.get(k) ?? 0) }])))}`);

    expect(unexpected.slice(0, 20), `seed ${SEED}: ${unexpected.length} unexpected answers`).toEqual([]);
    if (CASES >= 1000) expect(kinds.size).toBe(13);
    expect(JSON.stringify(await rig.store.list!({})), `seed ${SEED}: the store changed`).toBe(snapshot);
    // No forged event reached app.info as a proven one; the stand-in still counts only what it must.
    expect(rig.b24.stats.refreshReuse).toBe(0);
    expect(rig.b24.stats.appInfoCalls).toBeGreaterThanOrEqual(appInfoCalls);
    // Still up, and still doing its job.
    const another = rig.b24.addPortal();
    expect((await post(`${fuzz.url}/e`, rig.b24.installEvent(another.memberId).form)).status).toBe(200);
  }, 300_000);
});
