// RedisTokenStore on a real three-primary Redis Cluster (.ci/services/redis-cluster.sh, ports
// 7001-7003): the conformance suite (cross-process cases in real child processes), every key of a
// portal in one hash slot, portals spread over the primaries, a portal index that pages in order
// across slots, the layout refusal between a single Redis and a cluster, and a change feed that
// survives the loss of its node's connection.
import { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import { describeTokenStore } from '../../src/testing/conformance.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import type { StoreChange } from '../../src/store/token-store.js';
import { uniquePrefix } from './fixtures/redis-support.js';
import { CLUSTER_NODES, clusterAvailable, clusterInspector, clusterKeysUnder, dropClusterPrefix } from './fixtures/redis-cluster-support.js';
import { childModule } from '../support/children.js';

const available = await clusterAvailable();
const admin = clusterInspector();

afterAll(() => {
  admin.disconnect();
});

async function destroy(store: RedisTokenStore): Promise<void> {
  await store.close();
  await dropClusterPrefix(admin, store.keyPrefix);
}

async function slotOf(key: string): Promise<number> {
  return Number(await admin.call('CLUSTER', 'KEYSLOT', key));
}

async function eventually(check: () => boolean | Promise<boolean>, tries = 150): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

if (available) {
  await describeTokenStore('RedisTokenStore on a Redis Cluster', {
    create: () => new RedisTokenStore({ nodes: [...CLUSTER_NODES], keyPrefix: uniquePrefix('cconf') }),
    destroy,
    crossProcess: {
      ...childModule(new URL('./fixtures/open-redis-store.ts', import.meta.url)),
      args: (store) => ({ nodes: [...CLUSTER_NODES], keyPrefix: store.keyPrefix }),
    },
    extraTests: (getStore) => {
      it('keeps every key of a portal (records, tombstones, chains index, locks, index entry) in one hash slot', async () => {
        const store = getStore();
        const p = store.keyPrefix;
        await store.upsert(sampleRecord('m1'));
        await store.upsert({ ...sampleRecord('m1'), chain: 'user:7', userId: 7 });
        const lease = await store.tryLock('m1', 10_000);
        const userLease = await store.tryLock({ memberId: 'm1', chain: 'user:7' }, 10_000);
        await store.delete({ memberId: 'm1', chain: 'user:7' });
        const keys = (await clusterKeysUnder(admin, p)).filter((key) => key !== `${p}:layout`);
        expect(keys.map((key) => key.replace(/\{[^}]*\}/, '{…}')).sort()).toStrictEqual(
          [`${p}:{…}:layout`, `${p}:{…}:lock:m1:portal`, `${p}:{…}:lock:m1:user:7`, `${p}:{…}:portals`, `${p}:{…}:rec:m1:portal`, `${p}:{…}:tomb:m1`].sort(),
        );
        expect(new Set(await Promise.all(keys.map(slotOf))).size).toBe(1);
        expect(await admin.get(`${p}:layout`)).toBe('cluster-1');
        await lease?.release();
        await userLease?.release();
      });

      it('spreads portals over every primary and pages the index in memberId order across slots', async () => {
        const store = getStore();
        const ids = Array.from({ length: 40 }, (_, i) => `portal-${String(i).padStart(2, '0')}`);
        await Promise.all(ids.map((id) => store.upsert(sampleRecord(id))));
        const owners = new Set<string>();
        for (const id of ids) {
          const slot = await slotOf((await clusterKeysUnder(admin, store.keyPrefix)).find((key) => key.endsWith(`:rec:${id}:portal`))!);
          owners.add(JSON.stringify((admin.slots[slot] ?? [])[0]));
        }
        expect(owners.size, 'the portals live on all three primaries').toBe(3);
        const seen: string[] = [];
        let after: string | undefined;
        let pages = 0;
        do {
          const page = await store.list({ limit: 7, ...(after === undefined ? {} : { after }) });
          seen.push(...page.records.map((record) => record.memberId));
          after = page.next;
          pages++;
        } while (after !== undefined);
        expect(seen).toStrictEqual([...ids].sort());
        expect(pages).toBe(6);
        await store.deletePortal('portal-03');
        expect((await store.list({ after: 'portal-02', limit: 2 })).records.map((r) => r.memberId)).toStrictEqual(['portal-04', 'portal-05']);
      });

      it('delivers the changes of portals on every primary to one feed, and restores it on another node when its connection dies', async () => {
        const store = getStore();
        const changes: StoreChange[] = [];
        const statuses: string[] = [];
        await store.subscribe({ onChange: (change) => changes.push(change), onStatus: (status) => statuses.push(status) });
        const ids = Array.from({ length: 12 }, (_, i) => `feed-${i}`);
        await Promise.all(ids.map((id) => store.upsert(sampleRecord(id))));
        expect(await eventually(() => changes.length === ids.length)).toBe(true);
        // Kill the feed's connection wherever it is: the feed reports 'lost', then 'restored'.
        let killed = 0;
        for (const node of admin.nodes('master')) {
          const list = String(await node.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
          for (const line of list.split('\n').filter((l) => l.includes(`sub=1`))) {
            const id = /id=(\d+)/.exec(line)?.[1];
            const subscribed = String(await node.call('PUBSUB', 'CHANNELS', `${store.keyPrefix}:changes`));
            if (id !== undefined && subscribed.length > 0) killed += Number(await node.call('CLIENT', 'KILL', 'ID', id));
          }
        }
        expect(killed).toBeGreaterThanOrEqual(1);
        await eventually(() => statuses.join() === 'lost,restored');
        expect(statuses).toStrictEqual(['lost', 'restored']);
        await store.update('feed-0', 1, { scope: 'crm' });
        expect(await eventually(() => changes.some((c) => c.memberId === 'feed-0' && c.version === 2))).toBe(true);
      });

      it('refuses keys written on a single Redis layout, naming the fix', async () => {
        const store = getStore();
        await admin.set(`${store.keyPrefix}:layout`, '1');
        await expect(store.ready()).rejects.toThrow(/layout 1, but this store reads layout cluster-1: the keys were written on a single Redis/);
      });

      it('works with a Cluster client passed in, and leaves it open on close', async () => {
        const client = new Cluster([{ host: '127.0.0.1', port: 7002 }]);
        const keyPrefix = uniquePrefix('cgiven');
        try {
          const store = new RedisTokenStore({ client, keyPrefix });
          expect((await store.upsert(sampleRecord('m1'))).version).toBe(1);
          expect(await store.update('m1', 1, { scope: 'crm' })).toMatchObject({ ok: true, record: { version: 2 } });
          await store.close();
          expect(await client.ping()).toBe('PONG');
        } finally {
          await dropClusterPrefix(admin, keyPrefix);
          client.disconnect();
        }
      });
    },
  });
} else {
  describe.skip('RedisTokenStore on a Redis Cluster (cluster not up)', () => {
    it('needs the cluster', () => undefined);
  });
}
