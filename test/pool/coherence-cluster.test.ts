// Coherence across real processes on PostgreSQL and on Redis, counted at the stand-in: after worker
// A refreshes a portal, worker B's next calls meet no refused token; after A handles an uninstall,
// B's next clientFor throws PortalNotInstalledError without a REST call.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { dropTables, enterGate } from '../store/fixtures/pg-support.js';
import { dropPrefix, inspector } from '../store/fixtures/redis-support.js';
import { SERVICES, serviceAvailable } from '../support/services.js';

const worker = fileURLToPath(new URL('./fixtures/coherence-worker.ts', import.meta.url));
const postgres = await serviceAvailable('postgres');
const redis = await serviceAvailable('redis');

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});

function startWorker(kind: string, url: string, prefix: string, memberId: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', worker, kind, url, prefix, memberId], {
    env: { ...process.env, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret },
    stdio: 'pipe',
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const ask = async (command: string): Promise<Record<string, unknown>> => {
    child.stdin.write(`${command}\n`);
    const { value, done } = await lines.next();
    if (done) throw new Error(`worker ended early: ${stderr}`);
    return JSON.parse(value) as Record<string, unknown>;
  };
  return { child, ask };
}

const cases = [
  {
    name: 'PostgreSQL',
    available: postgres,
    kind: 'postgres',
    url: SERVICES.postgres.url,
    prefix: `coh_${process.pid}`,
    open: (prefix: string): TokenStore => new PostgresTokenStore({ connectionString: SERVICES.postgres.url, tablePrefix: prefix }),
    cleanup: (prefix: string) => dropTables(prefix),
    gate: () => enterGate('shared'),
  },
  {
    name: 'Redis',
    available: redis,
    kind: 'redis',
    url: SERVICES.redis.url,
    prefix: `coh-${process.pid}`,
    open: (prefix: string): TokenStore => new RedisTokenStore({ url: SERVICES.redis.url, keyPrefix: prefix }),
    cleanup: async (prefix: string) => {
      const client = inspector();
      await dropPrefix(client, prefix);
      client.disconnect();
    },
    gate: () => Promise.resolve(() => Promise.resolve()),
  },
];

describe.each(cases)('coherence across two processes on $name', ({ available, kind, url, prefix, open, cleanup, gate }) => {
  it.skipIf(!available)("follows worker A's refresh and uninstall in worker B, with no refused call", async () => {
    const leave = await gate();
    const store = open(prefix);
    const a = new PortalClientPool({ store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger });
    const portal = b24.addPortal();
    await seedStore(store, b24, portal.memberId);
    const b = startWorker(kind, url, prefix, portal.memberId);
    try {
      expect(await b.ask('calls 1')).toMatchObject({ ok: 1 });

      // A refreshes the portal; B's cached client must follow without a refused call.
      b24.expireAccessTokens(portal.memberId);
      expect((await (await a.clientFor(portal.memberId)).actions.v2.call.make({ method: 'profile' })).isSuccess).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 200)); // the notification crosses processes
      const refusedBefore = b24.stats.rest.invalidToken + b24.stats.rest.expiredToken;
      const tenCalls = await b.ask('calls 10');
      expect(tenCalls).toMatchObject({ ok: 10 });
      expect(b24.stats.rest.invalidToken + b24.stats.rest.expiredToken).toBe(refusedBefore);
      expect((tenCalls['stats'] as { refreshes: number }).refreshes).toBe(0);

      // A handles an uninstall; B's next clientFor knows without calling the portal.
      await store.deletePortal(portal.memberId);
      a.notify({ type: 'uninstalled', memberId: portal.memberId });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const restBefore = b24.stats.restByMethod['profile'] ?? 0;
      expect(await b.ask('clientFor')).toEqual({ error: 'PORTAL_NOT_INSTALLED' });
      expect(b24.stats.restByMethod['profile'] ?? 0).toBe(restBefore);
    } finally {
      b.child.stdin.write('exit\n');
      await new Promise((resolve) => b.child.once('exit', resolve));
      await a.close();
      await store.close?.();
      await cleanup(prefix);
      await leave();
    }
  }, 60_000);
});
