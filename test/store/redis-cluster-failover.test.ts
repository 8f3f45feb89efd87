// A Redis Cluster primary killed while a refresh storm runs: a cluster of its own (three primaries
// with a replica each on 127.0.0.1:7011-7016, started and removed here with
// .ci/services/redis-cluster.sh, so the shared cluster on 7001-7003 is never touched). Twenty
// portals with expired access tokens, five calls on each at once; the primary holding the most
// portals is killed during the storm and its replica takes its slots over. Then: no refresh token
// sent twice, no chain lost (each stored refresh token is the live one at the stand-in), every call
// that failed failed with the library's typed error, and every portal works again.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPortalTokensError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { RedisReplicationError, RedisTokenStore } from '../../src/store/redis/index.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { uniquePrefix } from './fixtures/redis-support.js';
import { clusterAvailable, clusterInspector, clusterScript, clusterUp } from './fixtures/redis-cluster-support.js';

const PORTS = [7011, 7012, 7013, 7014, 7015, 7016];
const NODES = PORTS.slice(0, 3).map((port) => `redis://127.0.0.1:${port}`);
const ENV = { REDIS_CLUSTER_PORTS: PORTS.join(' '), REDIS_CLUSTER_REPLICAS: '1', REDIS_CLUSTER_DIR: '/tmp/b24pt-redis-cluster-failover' };

// The cluster script and redis-server must be there: the shared cluster's check says so (and fails in CI).
const available = await clusterAvailable();
let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
  if (available) await clusterScript(ENV);
}, 90_000);
afterAll(async () => {
  await b24.close();
  if (available) await clusterScript(ENV, 'stop');
}, 60_000);

async function infoOf(port: number, section: string): Promise<string> {
  const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    return String(await client.call('INFO', section));
  } finally {
    client.disconnect();
  }
}

describe.skipIf(!available)('RedisTokenStore on a cluster whose primary dies during a storm', () => {
  it('20 portals x 5 calls, the busiest primary killed mid-storm and replaced by its replica: 0 reuse, 0 chains lost, failures typed, all portals work after', async () => {
    const keyPrefix = uniquePrefix('cfail');
    const store = new RedisTokenStore({ nodes: NODES, keyPrefix, timeoutMs: 8000 });
    const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, requestBudget: false });
    const admin = clusterInspector(NODES);
    try {
      await store.ready();
      const portals: string[] = [];
      for (let i = 0; i < 20; i++) {
        const portal = b24.addPortal();
        await seedStore(store, b24, portal.memberId);
        portals.push(portal.memberId);
      }
      // The primary holding the most portals.
      await admin.connect();
      const owner = new Map<number, number>();
      for (const memberId of portals) expect((await store.get(memberId))?.version).toBe(1);
      for (const node of admin.nodes('master')) {
        const port = Number(node.options.port);
        let count = 0;
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', `${keyPrefix}:*:rec:*:portal`, 'COUNT', 1000);
          cursor = next;
          count += keys.length;
        } while (cursor !== '0');
        owner.set(port, count);
      }
      const [victim, held] = [...owner].sort((a, b) => b[1] - a[1])[0]!;
      expect(held).toBeGreaterThan(0);
      const pid = Number(/process_id:(\d+)/.exec(await infoOf(victim, 'server'))?.[1]);
      let standIn = 0;
      for (const port of PORTS.slice(3)) if ((await infoOf(port, 'replication')).includes(`master_port:${victim}\r`)) standIn = port;
      expect(standIn, "the victim's replica").toBeGreaterThan(0);

      // A change feed on its own subscriber connection, followed through the failover.
      const changed = new Set<string>();
      const feed = await store.subscribe({ onChange: (change) => changed.add(change.memberId) });
      for (const memberId of portals) b24.expireAccessTokens(memberId);
      b24.resetStats();
      const storm = Promise.allSettled(
        portals.flatMap((memberId) =>
          Array.from({ length: 5 }, async () => (await (await pool.clientFor(memberId)).actions.v2.call.make({ method: 'profile' })).isSuccess),
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 30));
      process.kill(pid, 'SIGKILL'); // a node this test's script started
      const results = await storm;
      for (const result of results) {
        if (result.status === 'rejected') expect(findPortalTokensError(result.reason), String(result.reason)).toBeDefined();
      }
      // The replica took the slots over.
      const promoted = async (): Promise<boolean> => (await infoOf(standIn, 'replication')).includes('role:master') && (await clusterUp(standIn));
      for (let i = 0; i < 200 && !(await promoted()); i++) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await promoted()).toBe(true);

      expect(b24.stats.refreshReuse, 'no refresh token sent twice').toBe(0);
      // The store's cluster client learns the new slot owner by itself (within a few redirections).
      const readable = (): Promise<boolean> => Promise.all(portals.map((memberId) => store.get(memberId))).then(() => true, () => false);
      for (let i = 0; i < 100 && !(await readable()); i++) await new Promise((resolve) => setTimeout(resolve, 100));
      let lost = 0;
      for (const memberId of portals) {
        const record = await store.get(memberId);
        if (record === undefined || b24.tokenStatus(record.refreshToken) !== 'live') lost++;
      }
      expect(lost, 'every stored refresh token is the live one at the stand-in').toBe(0);
      // Every portal works again (a refresh begun during the failover may still be finishing its
      // write: a call that meets it waits for it, so each portal gets a few tries).
      const works = async (memberId: string): Promise<boolean> => {
        for (let attempt = 0; attempt < 4; attempt++) {
          const ok = await pool.clientFor(memberId).then((client) => client.actions.v2.call.make({ method: 'profile' })).then((r) => r.isSuccess, () => false);
          if (ok) return true;
        }
        return false;
      };
      const after = await Promise.all(portals.map(works));
      expect(after.filter(Boolean)).toHaveLength(20);
      expect(b24.stats.refreshReuse, 'still no refresh token sent twice').toBe(0);
      // The feed still delivers (from whichever node it is subscribed on now).
      // (A portal in the failed primary's slots now has a primary without a replica: its write is
      // applied and published, and reported as unconfirmed.)
      const late = b24.addPortal();
      await seedStore(store, b24, late.memberId).catch((error: unknown) => {
        if (!(error instanceof RedisReplicationError)) throw error;
      });
      for (let i = 0; i < 100 && !changed.has(late.memberId); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(changed.has(late.memberId), 'a change after the failover reaches the feed').toBe(true);
      await feed.close();
      console.info(`[cluster failover] ${results.filter((r) => r.status === 'fulfilled' && r.value).length} of 100 calls succeeded during the failover; ${held} portals on the killed primary`);
    } finally {
      admin.disconnect();
      await pool.close();
      await store.close();
    }
  }, 180_000);
});
