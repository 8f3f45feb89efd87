// The pool on a real three-primary Redis Cluster (.ci/services/redis-cluster.sh), in real worker
// processes against the stand-in Bitrix24: the refresh storms (portal and user chain), coherence
// between two processes through the change feed, and the request budget shared by four processes.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import type { PoolStats } from '../../src/pool-events.js';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { startWorker } from '../pool/worker-process.js';
import { expectOneRefreshAcrossProcesses } from '../support/storm.js';
import { uniquePrefix } from './fixtures/redis-support.js';
import { CLUSTER_NODES, clusterAvailable, clusterInspector, dropClusterPrefix } from './fixtures/redis-cluster-support.js';
import { nodeArgs } from '../support/children.js';

const available = await clusterAvailable();
const admin = clusterInspector();
const STORM = '4 worker processes x 25 concurrent calls on one expired portal: 1 refresh, 0 reuse, 100 of 100 succeed';

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
  admin.disconnect();
});

async function onPrefix(tag: string, run: (prefix: string) => Promise<void>): Promise<void> {
  const prefix = uniquePrefix(tag);
  try {
    await run(prefix);
  } finally {
    await dropClusterPrefix(admin, prefix);
  }
}

describe.skipIf(!available)('the pool on a Redis Cluster', () => {
  it(STORM, () => onPrefix('cstorm', (prefix) => expectOneRefreshAcrossProcesses(b24, { kind: 'redis', url: '', nodes: CLUSTER_NODES, prefix })), 90_000);

  it("4 worker processes x 25 concurrent calls on one user's expired chain: 1 refresh, 0 failed, the portal's chain untouched", () =>
    onPrefix('custorm', (prefix) => expectOneRefreshAcrossProcesses(b24, { kind: 'redis', url: '', nodes: CLUSTER_NODES, prefix }, { userId: 7 })), 90_000);

  it("follows worker A's refresh and uninstall in worker B, with no refused call", () =>
    onPrefix('ccoh', async (prefix) => {
      const store = new RedisTokenStore({ nodes: [...CLUSTER_NODES], keyPrefix: prefix });
      const a = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger });
      const portal = b24.addPortal();
      await seedStore(store, b24, portal.memberId);
      const b = startWorker(b24, 'redis-cluster', CLUSTER_NODES.join(','), prefix, portal.memberId);
      try {
        expect(await b.ask('calls 1')).toMatchObject({ ok: 1 });
        b24.expireAccessTokens(portal.memberId);
        expect((await (await a.clientFor(portal.memberId)).actions.v2.call.make({ method: 'profile' })).isSuccess).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, 200)); // the notification crosses processes (and nodes)
        const refusedBefore = b24.stats.rest.invalidToken + b24.stats.rest.expiredToken;
        const tenCalls = await b.ask('calls 10');
        expect(tenCalls).toMatchObject({ ok: 10 });
        expect(b24.stats.rest.invalidToken + b24.stats.rest.expiredToken).toBe(refusedBefore);
        expect((tenCalls['stats'] as { refreshes: number }).refreshes).toBe(0);

        await store.deletePortal(portal.memberId);
        a.notify({ type: 'uninstalled', memberId: portal.memberId });
        await new Promise((resolve) => setTimeout(resolve, 200));
        const restBefore = b24.stats.restByMethod['profile'] ?? 0;
        expect(await b.ask('clientFor')).toEqual({ error: 'PORTAL_NOT_INSTALLED' });
        expect(b24.stats.restByMethod['profile'] ?? 0).toBe(restBefore);
      } finally {
        await b.stop();
        await a.close();
        await store.close();
      }
    }), 60_000);

  it('4 processes x 20 calls on a fresh bucket share one budget in the cluster: no 503', () =>
    onPrefix('cbudget', async (prefix) => {
      const limits = { ratePerSec: 10, burst: 10 };
      const store = new RedisTokenStore({ nodes: [...CLUSTER_NODES], keyPrefix: prefix });
      const portal = b24.addPortal();
      await seedStore(store, b24, portal.memberId);
      await store.close();
      const worker = fileURLToPath(new URL('./fixtures/redis-cluster-budget-worker.ts', import.meta.url));
      const workers = Array.from({ length: 4 }, () => {
        const args = [CLUSTER_NODES.join(','), prefix, portal.memberId, '20', String(limits.ratePerSec), String(limits.burst)];
        const child = spawn(process.execPath, [...nodeArgs(worker), ...args], {
          env: { ...process.env, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret, B24_URL: b24.url },
          stdio: 'pipe',
        });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
        const nextLine = async (): Promise<string> => {
          const { value, done } = await lines.next();
          if (done) throw new Error(`worker ended early: ${stderr}`);
          return value;
        };
        return { child, nextLine };
      });
      try {
        for (const w of workers) expect(await w.nextLine()).toBe('ready');
        b24.limitRequests({ drainPerSec: limits.ratePerSec, burst: limits.burst });
        b24.resetStats();
        for (const w of workers) w.child.stdin.write('go\n');
        const outcomes = await Promise.all(workers.map(async (w) => JSON.parse(await w.nextLine()) as { ok: number; failed: number; stats: PoolStats }));
        expect(outcomes.reduce((sum, o) => sum + o.ok, 0)).toBe(80);
        expect(outcomes.reduce((sum, o) => sum + o.failed, 0)).toBe(0);
        expect(b24.stats.rest.queryLimitExceeded).toBe(0);
      } finally {
        b24.limitRequests(null);
        for (const w of workers) w.child.kill();
      }
    }), 90_000);
});
