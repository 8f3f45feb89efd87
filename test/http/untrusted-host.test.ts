// An install naming an OAuth host outside `trustedOAuthHosts` (the usual first test against a
// stand-in, with the option left out): the 403 stays terse, and the log line names the host the
// event named and the option to add it to, without a token.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createLifecycleHandler } from '../../src/http/handler.js';
import { startRig, type Rig } from './helpers.js';

let rig: Rig;
beforeEach(async () => {
  rig = await startRig();
});
afterEach(async () => {
  await rig.pool.close();
  await rig.b24.close();
});

it('names the untrusted host and the trustedOAuthHosts option in the log, never a token', async () => {
  const handler = createLifecycleHandler({ pool: rig.context }); // trustedOAuthHosts left out
  const portal = rig.b24.addPortal();
  const event = rig.b24.installEvent(portal.memberId);
  const answer = await handler({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: event.form });
  expect(answer).toMatchObject({ status: 403, body: { error: 'VERIFICATION_FAILED' } });
  expect(await rig.store.get(portal.memberId)).toBeUndefined();

  const host = new URL(rig.b24.oauthUrl).host; // 127.0.0.1:<port>
  const refused = rig.logger.lines.filter((line) => line.includes('untrusted_server_endpoint'));
  expect(refused).toHaveLength(1);
  expect(refused[0]).toContain(host);
  expect(refused[0]).toContain('trustedOAuthHosts');
  expect(refused[0]).toContain('https://oauth.bitrix.info'); // what is trusted now
  const params = new URLSearchParams(event.form);
  rig.secrets.add(params.get('auth[access_token]'), params.get('auth[refresh_token]'), params.get('auth[application_token]'));
  expect(rig.secrets.leakedIn(rig.logger.lines.join('\n'))).toEqual([]);
  expect(JSON.stringify(answer.body)).not.toContain(host); // the caller learns nothing new
});
