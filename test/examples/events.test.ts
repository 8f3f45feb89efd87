// examples/events.ts, started in-process against the stand-in Bitrix24 over real HTTP: install in, a deal
// event in (re-read through the portal's client), a forged deal event refused, uninstall in, events refused.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { start } from '../../examples/events.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';

let b24: FakeBitrix24;
let dir: string;

beforeEach(async () => {
  b24 = await FakeBitrix24.start();
  dir = await mkdtemp(join(tmpdir(), 'b24pt-events-example-'));
});

afterEach(async () => {
  await b24.close();
  await rm(dir, { recursive: true, force: true });
});

async function postForm(url: string, form: string): Promise<{ status: number; json: unknown }> {
  const answer = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  return { status: answer.status, json: await answer.json() };
}

it('examples/events.ts handles ONCRMDEALADD next to the lifecycle events on one URL', async () => {
  const app = await start({ clientId: b24.clientId, clientSecret: b24.clientSecret, port: 0, tokenDir: dir, ...b24.trust });
  try {
    const portal = b24.addPortal();
    const asked: unknown[] = [];
    // The portal's own answer for the deal: the event only names the id.
    b24.onMethod('crm.deal.get', ({ params, portal: called }) => {
      asked.push([called.memberId, params['id']]);
      return { result: { ID: String(params['id']), TITLE: 'Real title from the portal' } };
    });
    const events = `${app.url}/bitrix24/events`;
    const deals = async () => (await fetch(`${app.url}/portal/${portal.memberId}/deals`)).json();

    expect(await postForm(events, b24.installEvent(portal.memberId).form)).toEqual({ status: 200, json: { ok: true } });
    const genuine = b24.restEvent(portal.memberId, 'ONCRMDEALADD', { FIELDS: { ID: 501, TITLE: 'Claimed title' } }, { userId: 7 });
    expect(await postForm(events, genuine.form)).toEqual({ status: 200, json: { ok: true } });
    expect(asked).toEqual([[portal.memberId, '501']]);
    expect(await deals()).toEqual([{ id: '501', title: 'Real title from the portal' }]);

    const forged = b24.restEvent(portal.memberId, 'ONCRMDEALADD', { FIELDS: { ID: 502 } }).form.replace(portal.applicationToken, '0'.repeat(32));
    expect(await postForm(events, forged)).toEqual({ status: 403, json: { error: 'VERIFICATION_FAILED' } });

    expect(await postForm(events, b24.uninstallEvent(portal.memberId).form)).toEqual({ status: 200, json: { ok: true } });
    expect((await postForm(events, b24.restEvent(portal.memberId, 'ONCRMDEALADD', { FIELDS: { ID: 503 } }).form)).status).toBe(403);
    expect(asked).toHaveLength(1);
    expect(await deals()).toHaveLength(1);
  } finally {
    await app.close();
  }
});
