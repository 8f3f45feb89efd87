// Each example backend, started in-process against the stand-in Bitrix24 over real HTTP:
// install event in, profile out, uninstall in, profile refused.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { start as startExpress } from '../../examples/express.js';
import { start as startFastify } from '../../examples/fastify.js';
import { start as startNodeHttp } from '../../examples/node-http.js';
import type { ExampleConfig, RunningExample } from '../../examples/shared.js';

const examples: [string, (config: ExampleConfig) => Promise<RunningExample>][] = [
  ['node-http', startNodeHttp],
  ['express', startExpress],
  ['fastify', startFastify],
];

let b24: FakeBitrix24;
let dir: string;

beforeEach(async () => {
  b24 = await FakeBitrix24.start();
  dir = await mkdtemp(join(tmpdir(), 'b24pt-examples-'));
});

afterEach(async () => {
  await b24.close();
  await rm(dir, { recursive: true, force: true });
});

async function postForm(url: string, form: string): Promise<{ status: number; json: unknown }> {
  const answer = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  return { status: answer.status, json: await answer.json() };
}

async function getJson(url: string): Promise<{ status: number; json: unknown }> {
  const answer = await fetch(url);
  return { status: answer.status, json: await answer.json() };
}

describe.each(examples)('examples/%s.ts', (_name, start) => {
  it('installs a portal, serves its profile, uninstalls it, then refuses its profile', async () => {
    const app = await start({
      clientId: b24.clientId,
      clientSecret: b24.clientSecret,
      port: 0,
      tokenDir: dir,
      ...b24.trust,
    });
    try {
      const portal = b24.addPortal({ userName: 'Marta' });

      expect(await postForm(`${app.url}/bitrix24/events`, b24.installEvent(portal.memberId).form)).toEqual({ status: 200, json: { ok: true } });

      const profile = await getJson(`${app.url}/portal/${portal.memberId}/profile`);
      expect(profile.status).toBe(200);
      expect(profile.json).toMatchObject({ memberId: portal.memberId, profile: { NAME: 'Marta' } });
      expect(b24.stats.restByMethod['profile']).toBe(1);

      const forged = await postForm(`${app.url}/bitrix24/events`, b24.installEvent(portal.memberId).form.replace(/access_token%5D=[0-9a-f]+/, 'access_token%5D=forged0000').replace(/refresh_token%5D=[0-9a-f]+/, 'refresh_token%5D=forged0000'));
      expect(forged.status).toBe(403);

      expect(await postForm(`${app.url}/bitrix24/events`, b24.uninstallEvent(portal.memberId).form)).toEqual({ status: 200, json: { ok: true } });

      expect(await getJson(`${app.url}/portal/${portal.memberId}/profile`)).toEqual({ status: 404, json: { error: 'PORTAL_NOT_INSTALLED' } });
      expect(b24.stats.restByMethod['profile']).toBe(1);
    } finally {
      await app.close();
    }
  });
});
