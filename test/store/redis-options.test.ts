// RedisTokenStore's options and connections: URL credentials with URL-special characters (a real ACL
// user), who closes which connection, refused clients, fail-fast on an unreachable Redis, the layout
// check, and the clear error when the optional ioredis driver is missing.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { loadDriver } from '../../src/store/redis/connection.js';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { serviceAvailable } from '../support/services.js';
import { dropPrefix, inspector, keysUnder, REDIS_URL, uniquePrefix } from './fixtures/redis-support.js';

const available = await serviceAvailable('redis');
const admin = inspector();
const prefixes: string[] = [];
const opened: { close(): Promise<void> }[] = [];

function prefix(tag: string): string {
  const value = uniquePrefix(tag);
  prefixes.push(value);
  return value;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((store) => store.close()));
  for (const value of prefixes.splice(0)) await dropPrefix(admin, value);
});
afterAll(() => {
  admin.disconnect();
});

async function clientsOf(user: string): Promise<number> {
  const list = String(await admin.call('CLIENT', 'LIST'));
  return list.split('\n').filter((line) => line.includes(` user=${user} `)).length;
}

async function eventually(check: () => boolean | Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

describe.skipIf(!available)('RedisTokenStore connections', () => {
  it('connects with an ACL user whose password holds @ : / # % ? and closes every connection it opened', async () => {
    const user = `b24pt-acl-${randomBytes(4).toString('hex')}`;
    const password = `p@ss:w/rd#%?&=${randomBytes(4).toString('hex')}`;
    const keyPrefix = prefix('acl');
    await admin.call('ACL', 'SETUSER', user, 'on', `>${password}`, `~${keyPrefix}:*`, `&${keyPrefix}:*`, '+@all');
    try {
      const url = `redis://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:6379`;
      const store = new RedisTokenStore({ url, keyPrefix });
      await store.ready();
      expect((await store.upsert(sampleRecord('m1'))).version).toBe(1);
      const received: string[] = [];
      const feed = await store.subscribe({ onChange: (change) => received.push(change.memberId) });
      expect(await clientsOf(user)).toBe(2);
      await store.upsert(sampleRecord('m2'));
      expect(await eventually(() => received.includes('m2'))).toBe(true);
      await feed.close();
      expect(await eventually(async () => (await clientsOf(user)) === 1)).toBe(true);
      await store.subscribe({ onChange: () => undefined });
      await store.close();
      expect(await eventually(async () => (await clientsOf(user)) === 0)).toBe(true);
      await expect(store.get('m1')).rejects.toThrow(/closed/);
      await store.close();

      const wrong = new RedisTokenStore({ url: `redis://${user}:wrong@127.0.0.1:6379`, keyPrefix });
      opened.push(wrong);
      const error: unknown = await wrong.ready().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ transient: false, message: expect.stringContaining('WRONGPASS') });
      expect(String((error as StoreError).message)).not.toContain(password);
    } finally {
      await admin.call('ACL', 'DELUSER', user);
    }
  });

  it('gets ready for a user the ACL does not let run INFO (no replica is assumed) and writes', async () => {
    const user = `b24pt-noinfo-${randomBytes(4).toString('hex')}`;
    const password = randomBytes(8).toString('hex');
    const keyPrefix = prefix('noinfo');
    await admin.call('ACL', 'SETUSER', user, 'on', `>${password}`, `~${keyPrefix}:*`, `&${keyPrefix}:*`, '+@all', '-info');
    try {
      const store = new RedisTokenStore({ url: `redis://${user}:${password}@127.0.0.1:6379`, keyPrefix });
      opened.push(store);
      await store.ready();
      expect((await store.upsert(sampleRecord('m1'))).version).toBe(1);
      expect(await store.update('m1', 1, { scope: 'crm' })).toMatchObject({ ok: true, record: { version: 2 } });
    } finally {
      await admin.call('ACL', 'DELUSER', user);
    }
  });

  it('uses a given client and leaves it open on close; its change feed uses a duplicate it does close', async () => {
    const client = new Redis(REDIS_URL);
    try {
      const store = new RedisTokenStore({ client, keyPrefix: prefix('given') });
      const name = `b24pt-given-${randomBytes(4).toString('hex')}`;
      await client.call('CLIENT', 'SETNAME', name);
      await store.upsert(sampleRecord('m1'));
      const changes: number[] = [];
      await store.subscribe({ onChange: (change) => changes.push(change.version ?? -1) });
      await store.update('m1', 1, { scope: 'crm' });
      expect(await eventually(() => changes.includes(2))).toBe(true);
      await store.close();
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
      expect(String(await admin.call('CLIENT', 'LIST'))).toContain(`name=${name} `);
      await expect(store.get('m1')).rejects.toBeInstanceOf(StoreError);
    } finally {
      client.disconnect();
    }
  });

  it('works with a given client whatever its reply options (stringNumbers, RESP2, RESP3 maps)', async () => {
    for (const options of [{ stringNumbers: true }, { protocol: 2 as const }, { replyMapping: 'resp3' as const }]) {
      const client = new Redis(REDIS_URL, options);
      try {
        const store = new RedisTokenStore({ client, keyPrefix: prefix('replies') });
        expect((await store.upsert(sampleRecord('m1'))).version).toBe(1);
        expect(await store.update('m1', 1, { scope: 'crm' })).toMatchObject({ ok: true, record: { version: 2, scope: 'crm' } });
        expect(await store.get('m1')).toMatchObject({ version: 2, scope: 'crm', applicationToken: expect.any(String) });
        await store.upsert(sampleRecord('m2'));
        expect(await store.list({ limit: 1 })).toMatchObject({ records: [{ memberId: 'm1' }], next: 'm1' });
        const lease = await store.tryLock('m1', 10_000);
        expect(await lease?.renew?.(10_000)).toBe(true);
        expect(await store.delete('m2')).toBe(true);
        expect(await store.deletePortal('m1')).toBe(1);
        await store.close();
      } finally {
        client.disconnect();
      }
    }
  });

  it('refuses a client that prefixes keys itself, and bad options, with a TypeError', () => {
    const prefixing = new Redis(REDIS_URL, { keyPrefix: 'app:', lazyConnect: true });
    expect(() => new RedisTokenStore({ client: prefixing })).toThrow(/keyPrefix/);
    expect(() => new RedisTokenStore({ nodes: [] })).toThrow(/options\.nodes/);
    expect(() => new RedisTokenStore({ nodes: ['redis://127.0.0.1'] })).toThrow(/host and a port/);
    expect(() => new RedisTokenStore({ nodes: ['http://user:hunter2@127.0.0.1:7001'] })).toThrow(/options\.nodes\[\] must start/);
    expect(() => new RedisTokenStore({ url: REDIS_URL, nodes: ['redis://127.0.0.1:7001'] } as never)).toThrow(/exactly one/);
    expect(() => new RedisTokenStore({ url: REDIS_URL, replicas: { wait: -1 } })).toThrow(/replicas\.wait/);
    expect(() => new RedisTokenStore({ url: REDIS_URL, timeoutMs: 500, replicas: { timeoutMs: 500 } })).toThrow(/below options\.timeoutMs/);
    expect(() => new RedisTokenStore({ client: {} as never })).toThrow(TypeError);
    expect(() => new RedisTokenStore({ url: REDIS_URL, keyPrefix: 'has space' })).toThrow(/keyPrefix/);
    expect(() => new RedisTokenStore({ url: REDIS_URL, keyPrefix: 'glob*' })).toThrow(/keyPrefix/);
    expect(() => new RedisTokenStore({ url: REDIS_URL, keyPrefix: '' })).toThrow(/keyPrefix/);
    expect(() => new RedisTokenStore({ url: REDIS_URL, timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => new RedisTokenStore({ url: REDIS_URL, client: prefixing } as never)).toThrow(/exactly one/);
    expect(() => new RedisTokenStore({} as never)).toThrow(/exactly one/);
    expect(() => new RedisTokenStore({ url: 'http://user:hunter2@host' })).toThrow(/redis:\/\//);
    const bad = (() => {
      try {
        return new RedisTokenStore({ url: 'redis://user:hunter2@[bad' });
      } catch (error) {
        return error as Error;
      }
    })();
    expect(bad).toBeInstanceOf(TypeError);
    expect((bad as Error).message).not.toContain('hunter2');
    prefixing.disconnect();
  });

  it('ready() against a port nobody listens on rejects with a transient StoreError from the connection, not a timeout', async () => {
    // A long store deadline: the rejection must come from the connection options failing fast.
    const store = new RedisTokenStore({ url: 'redis://127.0.0.1:1', keyPrefix: prefix('down'), timeoutMs: 120_000 });
    opened.push(store);
    const error: unknown = await store.ready().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).transient).toBe(true);
    expect((error as StoreError).message).toMatch(/unreachable.*ECONNREFUSED/);
    await expect(store.get('m1')).rejects.toMatchObject({ transient: true });
  });

  it('records the layout once on an empty prefix, and refuses keys of another layout', async () => {
    const keyPrefix = prefix('layout');
    const store = new RedisTokenStore({ url: REDIS_URL, keyPrefix });
    opened.push(store);
    await store.ready();
    await store.ready();
    expect(await keysUnder(admin, keyPrefix)).toStrictEqual([`${keyPrefix}:layout`]);
    await admin.set(`${keyPrefix}:layout`, '2');
    const other = new RedisTokenStore({ url: REDIS_URL, keyPrefix });
    opened.push(other);
    const error: unknown = await other.ready().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).transient).toBe(false);
    expect((error as StoreError).message).toMatch(/layout 2.*layout 1/);
    // The store that was ready before the change still refuses to write into the other layout.
    await expect(store.upsert(sampleRecord('m1'))).rejects.toThrow(/layout 2/);
    expect(await keysUnder(admin, keyPrefix)).toStrictEqual([`${keyPrefix}:layout`]);
  });
});

describe('loading the optional ioredis driver', () => {
  it('names the package to install when ioredis is missing', async () => {
    const missing = Object.assign(new Error("Cannot find package 'ioredis'"), { code: 'ERR_MODULE_NOT_FOUND' });
    const error: unknown = await loadDriver(() => Promise.reject(missing)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).message).toContain('npm install ioredis');
    expect((error as StoreError).cause).toBe(missing);
  });

  it('is not loaded by importing the package root or this store, only when a URL store first connects', async () => {
    const script = `
      import { createRequire } from 'node:module';
      const cache = createRequire(import.meta.url).cache;
      const loaded = () => Object.keys(cache).some((path) => path.includes('/node_modules/ioredis/'));
      await import(${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)});
      const { RedisTokenStore } = await import(${JSON.stringify(new URL('../../src/store/redis/index.ts', import.meta.url).href)});
      const afterImport = loaded();
      const store = new RedisTokenStore({ url: 'redis://127.0.0.1:1' });
      const afterConstruct = loaded();
      await store.get('m1').catch(() => undefined);
      await store.close();
      console.log(JSON.stringify([afterImport, afterConstruct, loaded()]));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
    expect(JSON.parse(stdout.trim().split('\n').at(-1) ?? '')).toStrictEqual([false, false, true]);
  });

  it('finds the Redis class in the installed ioredis', async () => {
    expect(await loadDriver()).toBe(Redis);
  });
});
