// Refresh storms against the stand-in Bitrix24 (which enforces single-use refresh tokens and kills
// the previous access token on refresh): this library's pool beside the two ways the SDK is used
// today. Run: npm run bench
//
//   scenario 1: 1 portal, token just expired, 50 concurrent calls (v2/v3 mixed)
//   scenario 2: 10 portals, 20 concurrent calls each
//   scenario 3: 4 worker processes sharing one store, 25 concurrent calls each on one portal
//
//   strategies:
//   pool          PortalClientPool on a FileTokenStore
//   shared        one B24OAuth per portal (per process), its refresh callback writes back
//   per-request   a new B24OAuth per request from the stored pair, refresh callback writes back
//                 (the b24jssdk install recipe's clientForMember)

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { B24OAuth } from '@bitrix24/b24jssdk';
import { PortalClientPool } from '../src/pool/pool.js';
import { FileTokenStore } from '../src/store/file.js';
import type { TokenStore } from '../src/store/token-store.js';
import { FakeBitrix24, seedStore } from '../src/testing/fake-bitrix24.js';

type Strategy = 'pool' | 'shared' | 'per-request';
const STRATEGIES: Strategy[] = ['pool', 'shared', 'per-request'];
const self = fileURLToPath(import.meta.url);

interface Credentials {
  clientId: string;
  clientSecret: string;
}

/** Makes a function that performs one `profile` call for a portal with the given strategy. */
function caller(strategy: Strategy, store: TokenStore, credentials: Credentials): (memberId: string, i: number) => Promise<boolean> {
  const version = (i: number) => (i % 2 === 0 ? 'v2' : 'v3');
  if (strategy === 'pool') {
    const pool = new PortalClientPool({ store, ...credentials });
    return async (memberId, i) => (await (await pool.clientFor(memberId)).actions[version(i)].call.make({ method: 'profile' })).isSuccess;
  }
  const build = async (memberId: string): Promise<B24OAuth> => {
    const r = await store.get(memberId);
    if (r === undefined) throw new Error('not installed');
    const client = new B24OAuth(
      {
        applicationToken: r.applicationToken ?? '',
        userId: r.userId ?? 0,
        memberId,
        accessToken: r.accessToken,
        refreshToken: r.refreshToken,
        expires: r.expires,
        expiresIn: 3600,
        scope: r.scope,
        domain: r.domain,
        clientEndpoint: r.clientEndpoint,
        serverEndpoint: r.serverEndpoint,
        status: 'L',
      },
      credentials,
    );
    // The write-back everyone writes: save whatever the SDK refreshed to.
    client.setCallbackRefreshAuth(async ({ b24OAuthParams: p }) => {
      const current = await store.get(memberId);
      if (current === undefined) return;
      await store.upsert({ ...current, accessToken: p.accessToken, refreshToken: p.refreshToken, expires: p.expires, updatedAt: Date.now(), chainUpdatedAt: Date.now() });
    });
    return client;
  };
  if (strategy === 'shared') {
    const clients = new Map<string, Promise<B24OAuth>>();
    return async (memberId, i) => {
      let client = clients.get(memberId);
      if (client === undefined) clients.set(memberId, (client = build(memberId)));
      return (await (await client).actions[version(i)].call.make({ method: 'profile' })).isSuccess;
    };
  }
  return async (memberId, i) => (await (await build(memberId)).actions[version(i)].call.make({ method: 'profile' })).isSuccess;
}

async function countOutcomes(calls: Promise<boolean>[]): Promise<number> {
  const results = await Promise.allSettled(calls);
  return results.filter((r) => r.status === 'rejected' || !r.value).length;
}

async function seed(b24: FakeBitrix24, store: TokenStore): Promise<string> {
  const portal = b24.addPortal();
  await seedStore(store, b24, portal.memberId);
  return portal.memberId;
}

interface Row {
  scenario: string;
  strategy: Strategy;
  refreshRequests: number;
  reuse: number;
  failed: number;
  calls: number;
  wallMs: number;
}

async function inProcess(b24: FakeBitrix24, strategy: Strategy, portals: number, callsEach: number, label: string): Promise<Row> {
  const dir = await mkdtemp(join(tmpdir(), 'b24pt-bench-'));
  try {
    const store = new FileTokenStore({ directory: dir });
    const members = await Promise.all(Array.from({ length: portals }, () => seed(b24, store)));
    const call = caller(strategy, store, b24);
    // Warm the clients (as a running service would have), then expire every token server-side.
    await Promise.all(members.map((m) => call(m, 0)));
    for (const m of members) b24.expireAccessTokens(m);
    b24.resetStats();
    const started = performance.now();
    const failed = await countOutcomes(members.flatMap((m) => Array.from({ length: callsEach }, (_, i) => call(m, i))));
    const wallMs = performance.now() - started;
    return { scenario: label, strategy, refreshRequests: b24.stats.refreshRequests, reuse: b24.stats.refreshReuse, failed, calls: portals * callsEach, wallMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function multiProcess(b24: FakeBitrix24, strategy: Strategy, workers: number, callsEach: number): Promise<Row> {
  const dir = await mkdtemp(join(tmpdir(), 'b24pt-bench-'));
  try {
    const store = new FileTokenStore({ directory: dir });
    const memberId = await seed(b24, store);
    const children = Array.from({ length: workers }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', self, '--worker', strategy, dir, memberId, String(callsEach)], {
        env: { ...process.env, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret },
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      return { child, next: async () => String((await lines.next()).value) };
    });
    for (const c of children) await c.next(); // "ready"
    b24.expireAccessTokens(memberId);
    b24.resetStats();
    const started = performance.now();
    for (const c of children) c.child.stdin.write('go\n');
    const failed = (await Promise.all(children.map(async (c) => Number(await c.next())))).reduce((a, b) => a + b, 0);
    const wallMs = performance.now() - started;
    return { scenario: `3: ${workers} processes x ${callsEach} calls`, strategy, refreshRequests: b24.stats.refreshRequests, reuse: b24.stats.refreshReuse, failed, calls: workers * callsEach, wallMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function workerMain(args: string[]): Promise<void> {
  const [strategy, directory, memberId, count] = args as [Strategy, string, string, string];
  const call = caller(strategy, new FileTokenStore({ directory }), {
    clientId: process.env['B24_CLIENT_ID']!,
    clientSecret: process.env['B24_CLIENT_SECRET']!,
  });
  await call(memberId, 0).catch(() => false); // warm up before the token expires
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  const failed = await countOutcomes(Array.from({ length: Number(count) }, (_, i) => call(memberId, i)));
  process.stdout.write(`${failed}\n`);
  process.exit(0);
}

async function main(): Promise<void> {
  const b24 = await FakeBitrix24.start();
  const rows: Row[] = [];
  try {
    for (const strategy of STRATEGIES) rows.push(await inProcess(b24, strategy, 1, 50, '1: 1 portal x 50 calls'));
    for (const strategy of STRATEGIES) rows.push(await inProcess(b24, strategy, 10, 20, '2: 10 portals x 20 calls'));
    for (const strategy of STRATEGIES) rows.push(await multiProcess(b24, strategy, 4, 25));
  } finally {
    await b24.close();
  }
  const header = '| scenario | strategy | refresh requests | refresh-token reuse | failed calls | wall time |';
  console.log(header);
  console.log('|---|---|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.scenario} | ${r.strategy} | ${r.refreshRequests} | ${r.reuse} | ${r.failed} of ${r.calls} | ${r.wallMs.toFixed(0)} ms |`);
  }
}

if (process.argv[2] === '--worker') await workerMain(process.argv.slice(3));
else await main();
