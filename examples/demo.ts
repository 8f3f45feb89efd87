// `npm run demo`: the node:http example backend with a file token store, driven against a stand-in
// Bitrix24 on loopback. It shows, step by step and with the numbers, what the library does and why.

import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { B24OAuth } from '@bitrix24/b24jssdk';
// In your own tests: import { FakeBitrix24 } from 'b24-portal-tokens/testing'.
import { FakeBitrix24, type FakePortal } from '../src/testing/index.js';
import { start } from './node-http.js';

const say = (text = ''): void => console.log(text);
const step = (title: string): void => say(`\n== ${title}`);
const summary: string[] = [];
let failures = 0;
function check(ok: boolean, line: string): void {
  summary.push(`${ok ? 'OK  ' : 'FAIL'} ${line}`);
  if (!ok) failures += 1;
}

const b24 = await FakeBitrix24.start();
const dir = await mkdtemp(join(tmpdir(), 'b24-portal-tokens-demo-'));
// The example's default store: FileTokenStore, one 0600 file per portal, written atomically.
const app = await start({ clientId: b24.clientId, clientSecret: b24.clientSecret, port: 0, tokenDir: dir, ...b24.trust });

async function send(body: string): Promise<string> {
  const answer = await fetch(`${app.url}/bitrix24/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  return `${answer.status} ${await answer.text()}`;
}
async function profile(portal: FakePortal): Promise<{ status: number; name: string | undefined }> {
  const answer = await fetch(`${app.url}/portal/${portal.memberId}/profile`);
  const body = (await answer.json()) as { profile?: { NAME?: string } };
  return { status: answer.status, name: body.profile?.NAME };
}
/** A portal's record as stored: the newest version file in its chain's directory (`<hex of member_id>/<n>.json`). */
const recordPath = async (memberId: string): Promise<string> => {
  const chain = join(dir, Buffer.from(memberId).toString('hex'));
  const newest = Math.max(...(await readdir(chain)).map((name) => Number.parseInt(name, 10)).filter(Number.isFinite));
  return join(chain, `${newest}.json`);
};
const recordFile = async (portal: FakePortal): Promise<string> => readFile(await recordPath(portal.memberId), 'utf8');

try {
  say('b24-portal-tokens demo: one backend, many Bitrix24 portals.');
  say(`A stand-in Bitrix24 (OAuth server + portals) runs at ${b24.url}; the example backend at ${app.url};`);
  say(`tokens are kept by FileTokenStore in ${dir}.`);

  step('1. Three portals install the app');
  say('Bitrix24 POSTs ONAPPINSTALL with a fresh token chain. The handler proves it by refreshing it at');
  say('the trusted OAuth host (a forged chain fails; a real one names its portal), and stores the fresh pair.');
  const portals = [
    b24.addPortal({ domain: 'acme.bitrix24.test', userName: 'Anna' }),
    b24.addPortal({ domain: 'globex.bitrix24.test', userName: 'Boris' }),
    b24.addPortal({ domain: 'initech.bitrix24.test', userName: 'Clara' }),
  ];
  let installed = 0;
  for (const portal of portals) {
    const answer = await send(b24.installEvent(portal.memberId).form);
    say(`  ${portal.domain}: ${answer}`);
    if (answer.startsWith('200')) installed += 1;
  }
  const chains = (await readdir(dir)).filter((name) => /^[0-9a-f]+$/.test(name));
  const mode = ((await stat(await recordPath(portals[0]?.memberId ?? ''))).mode & 0o777).toString(8);
  say(`  ${chains.length} chain directories, one per portal, record files mode ${mode}; ${b24.stats.refreshRequests} chains proven by refreshing them.`);
  check(installed === 3 && chains.length === 3, `Installed 3 portals, each proven with the OAuth host (${b24.stats.refreshRequests} refreshes)`);

  step('2. Each portal is called through its pooled client');
  for (const portal of portals) {
    const { status, name } = await profile(portal);
    say(`  GET /portal/${portal.memberId.slice(0, 8)}…/profile -> ${status}, NAME=${name}`);
  }

  step('3. Every access token expires; 30 calls arrive at once');
  say('Bitrix24 refresh tokens are single-use: two workers refreshing the same one break the chain.');
  say('First, for contrast, the bare SDK: one B24OAuth instance, 20 concurrent v2/v3 calls.');
  b24.setOAuthDelay(100); // a slow OAuth host, so concurrent refreshes overlap as they do in production
  const spare = b24.addPortal({ domain: 'bare-sdk.bitrix24.test' });
  const bare = new B24OAuth(b24.oauthParams(spare.memberId, b24.issueChain(spare.memberId)), {
    clientId: b24.clientId,
    clientSecret: b24.clientSecret,
  });
  b24.expireAccessTokens(spare.memberId);
  b24.resetStats();
  const bareResults = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) => bare.actions[i % 2 === 0 ? 'v2' : 'v3'].call.make({ method: 'profile' })),
  );
  const bareFailed = bareResults.filter((r) => r.status === 'rejected' || !r.value.isSuccess).length;
  say(`  bare SDK: ${b24.stats.refreshRequests} refresh requests, ${b24.stats.refreshReuse} reused a spent refresh token, ${bareFailed}/20 calls failed.`);

  say('Now the library: 10 concurrent calls per portal (v2 over HTTP, v3 straight from the pool).');
  b24.expireAccessTokens();
  b24.resetStats();
  const refreshes = new Map<string, number>();
  app.pool.on('refreshed', ({ memberId }) => refreshes.set(memberId, (refreshes.get(memberId) ?? 0) + 1));
  const calls = portals.flatMap((portal) =>
    Array.from({ length: 10 }, async (_, i) => {
      if (i % 2 === 0) return (await profile(portal)).status === 200;
      const client = await app.pool.clientFor(portal.memberId);
      return (await client.actions.v3.call.make({ method: 'profile' })).isSuccess;
    }),
  );
  const results = await Promise.allSettled(calls);
  const failed = results.filter((r) => r.status === 'rejected' || !r.value).length;
  for (const portal of portals) say(`  ${portal.domain}: ${refreshes.get(portal.memberId) ?? 0} refresh`);
  say(`  stand-in: ${b24.stats.refreshRequests} refresh requests, ${b24.stats.refreshReuse} reused, ${failed}/30 calls failed.`);
  const onePerPortal = portals.every((portal) => refreshes.get(portal.memberId) === 1);
  check(
    onePerPortal && b24.stats.refreshRequests === 3 && b24.stats.refreshReuse === 0 && failed === 0,
    `Refreshes after expiry: 1 per portal (${b24.stats.refreshRequests} total) for 30 concurrent calls, ${failed} failed, ${b24.stats.refreshReuse} refresh tokens reused`,
  );
  b24.setOAuthDelay(0);

  step('4. A forged install for acme');
  say("Anyone who knows a member_id can POST an ONAPPINSTALL with their own tokens and endpoints.");
  const [acme, globex, initech] = portals as [FakePortal, FakePortal, FakePortal];
  const before = await recordFile(acme);
  const forged = b24
    .installEvent(acme.memberId)
    .form.replace(/(auth%5Baccess_token%5D=)[^&]+/, '$1forged-token')
    .replace(/(auth%5Brefresh_token%5D=)[^&]+/, '$1forged-refresh-token')
    .replace(/(auth%5Bclient_endpoint%5D=)[^&]+/, `$1${encodeURIComponent('https://attacker.example/rest/')}`);
  const forgedAnswer = await send(forged);
  const unchanged = (await recordFile(acme)) === before;
  const stillWorks = (await profile(acme)).status === 200;
  say(`  answer: ${forgedAnswer}; stored record unchanged: ${unchanged}; acme still served: ${stillWorks}`);
  check(forgedAnswer.startsWith('403') && unchanged && stillWorks, 'Forged install refused: 403, stored record unchanged');

  step('5. A forged uninstall for globex');
  say('An uninstall carries no tokens; its application_token is compared (in constant time) with the stored one.');
  const body = new URLSearchParams({
    event: 'ONAPPUNINSTALL',
    'data[CLEAN]': '0',
    'auth[member_id]': globex.memberId,
    'auth[domain]': globex.domain,
    'auth[client_endpoint]': globex.clientEndpoint,
    'auth[server_endpoint]': b24.serverEndpoint,
    'auth[application_token]': 'not-the-real-application-token',
  }).toString();
  const forgedUninstall = await send(body);
  const globexWorks = (await profile(globex)).status === 200;
  say(`  answer: ${forgedUninstall}; globex still served: ${globexWorks}`);
  check(forgedUninstall.startsWith('403') && globexWorks, 'Forged uninstall refused: 403, portal still works');

  step('6. initech uninstalls the app');
  const uninstall = await send(b24.uninstallEvent(initech.memberId).form);
  const after = await profile(initech);
  say(`  answer: ${uninstall}; GET profile now -> ${after.status}`);
  check(uninstall.startsWith('200') && after.status === 404, `Uninstalled ${initech.domain}: its record is deleted, profile answers 404`);
} finally {
  await app.close();
  await b24.close();
  await rm(dir, { recursive: true, force: true });
}

step('Summary');
for (const line of summary) say(`  ${line}`);
say(failures === 0 ? '\nAll checks passed.' : `\n${failures} check(s) failed.`);
process.exitCode = failures === 0 ? 0 : 1;
