// The stores the benchmark runs on, each under a unique directory, table prefix or key prefix that
// is removed afterwards, and a filler that stores many portals through the store's own upsert.

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import { FileTokenStore } from '../src/store/file/store.js';
import { MemoryTokenStore } from '../src/store/memory/store.js';
import { PostgresTokenStore } from '../src/store/postgres/index.js';
import { RedisTokenStore } from '../src/store/redis/index.js';
import { SqliteTokenStore } from '../src/store/sqlite/index.js';
import type { PortalRecordInput, TokenStore } from '../src/store/token-store.js';
import { concurrently } from './lib.js';

export const PG_URL = process.env['B24PT_BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env['B24PT_BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
/** The Redis Cluster's nodes (.ci/services/redis-cluster.sh), comma-separated. */
export const REDIS_CLUSTER_NODES = (process.env['B24PT_BENCH_REDIS_CLUSTER'] ?? 'redis://127.0.0.1:7001,redis://127.0.0.1:7002,redis://127.0.0.1:7003').split(',');

export type StoreKind = 'memory' | 'file' | 'sqlite' | 'postgres' | 'redis' | 'redis-cluster';

export interface BenchStore {
  readonly kind: StoreKind;
  readonly store: TokenStore;
  /** What another process needs to open the same store (see {@link openStore}). */
  readonly location: StoreLocation;
  /** Closes the store and removes everything it wrote. */
  readonly dispose: () => Promise<void>;
}

export interface StoreLocation {
  readonly kind: StoreKind;
  readonly directory?: string;
  readonly filename?: string;
  readonly prefix?: string;
}

const tag = () => `${process.pid}_${randomBytes(3).toString('hex')}`;

/** Opens a store at a location made by {@link createStore} (in this process or a worker). */
export function openStore(at: StoreLocation): TokenStore {
  switch (at.kind) {
    case 'memory':
      return new MemoryTokenStore();
    case 'file':
      return new FileTokenStore({ directory: at.directory! });
    case 'sqlite':
      return new SqliteTokenStore({ filename: at.filename! });
    case 'postgres':
      return new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: at.prefix!, maxConnections: 10 });
    case 'redis':
      return new RedisTokenStore({ url: REDIS_URL, keyPrefix: at.prefix! });
    case 'redis-cluster':
      return new RedisTokenStore({ nodes: REDIS_CLUSTER_NODES, keyPrefix: at.prefix! });
  }
}

async function dropRedisCluster(prefix: string): Promise<void> {
  const cluster = new Cluster(REDIS_CLUSTER_NODES.map((url) => ({ host: new URL(url).hostname, port: Number(new URL(url).port) })));
  try {
    await cluster.ping();
    for (const node of cluster.nodes('master')) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5000);
        cursor = next;
        await Promise.all(keys.map((key) => cluster.unlink(key))); // keys of many slots: one at a time
      } while (cursor !== '0');
    }
  } finally {
    cluster.disconnect();
  }
}

async function dropPostgres(prefix: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(`DROP TABLE IF EXISTS "${prefix}_records", "${prefix}_locks", "${prefix}_meta", "${prefix}_budgets" CASCADE`);
  } finally {
    await client.end();
  }
}

async function dropRedis(prefix: string): Promise<void> {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5000);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

/** Creates an empty store of a kind. */
export async function createStore(kind: StoreKind): Promise<BenchStore> {
  let location: StoreLocation;
  let remove: () => Promise<void>;
  switch (kind) {
    case 'memory':
      location = { kind };
      remove = () => Promise.resolve();
      break;
    case 'file': {
      const directory = await mkdtemp(join(tmpdir(), 'b24pt-bench-file-'));
      location = { kind, directory };
      remove = () => rm(directory, { recursive: true, force: true });
      break;
    }
    case 'sqlite': {
      const directory = await mkdtemp(join(tmpdir(), 'b24pt-bench-sqlite-'));
      location = { kind, filename: join(directory, 'tokens.db') };
      remove = () => rm(directory, { recursive: true, force: true });
      break;
    }
    case 'postgres': {
      const prefix = `bench_${tag()}`;
      location = { kind, prefix };
      remove = () => dropPostgres(prefix);
      break;
    }
    case 'redis': {
      const prefix = `b24pt-bench:${tag()}`;
      location = { kind, prefix };
      remove = () => dropRedis(prefix);
      break;
    }
    case 'redis-cluster': {
      const prefix = `b24pt-bench:${tag()}`;
      location = { kind, prefix };
      remove = () => dropRedisCluster(prefix);
      break;
    }
  }
  const store = openStore(location);
  await store.ready?.();
  return {
    kind,
    store,
    location,
    dispose: async () => {
      await store.close?.().catch(() => undefined);
      await remove();
    },
  };
}

/** A stored portal that is no stand-in portal: enough for the pool to build a client, never called. */
export function fillerRecord(index: number, serverEndpoint: string): PortalRecordInput {
  const memberId = `f${index.toString(16).padStart(31, '0')}`;
  const now = Date.now();
  return {
    memberId,
    domain: `filler${index}.bitrix24.test`,
    clientEndpoint: `https://filler${index}.bitrix24.test/rest/`,
    serverEndpoint,
    accessToken: randomBytes(24).toString('hex'),
    refreshToken: randomBytes(24).toString('hex'),
    expires: Math.floor(now / 1000) + 86_400,
    scope: 'crm,user_brief',
    status: 'L',
    userId: 1,
    applicationToken: randomBytes(16).toString('hex'),
    state: 'active',
    revokedReason: null,
    installedAt: now,
    updatedAt: now,
    chainUpdatedAt: now,
    revokedAt: null,
  };
}

export const fillerMemberId = (index: number): string => fillerRecord(index, 'https://oauth.bitrix.info/rest/').memberId;

/**
 * Stores filler portals `from`..`to - 1` through the store's own `upsert`, many in flight at once
 * (every write is as durable as any other: the file store fsyncs each one).
 */
export async function fill(store: TokenStore, from: number, to: number, serverEndpoint = 'https://oauth.bitrix.info/rest/'): Promise<void> {
  const indexes = Array.from({ length: to - from }, (_, i) => from + i);
  const limit = store instanceof SqliteTokenStore ? 1 : store instanceof FileTokenStore ? 64 : 32;
  await concurrently(indexes, limit, (i) => store.upsert(fillerRecord(i, serverEndpoint)));
}
