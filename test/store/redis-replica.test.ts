// A chain write acknowledged only once a replica has it (Redis WAIT), on a real primary and replica
// (.ci/services/redis-replica.sh: 127.0.0.1:6390 -> 6391). The replica is re-pointed at a loopback
// relay in this process, which holds replication back (keeps what the primary sends instead of
// passing it on) while a refresh storm runs; then the primary is killed (what was held is dropped,
// as a partition would), the replica promoted (REPLICAOF NO ONE) and a store opened on it: with the
// wait, every portal's stored refresh token is the live one at the stand-in; without it
// (replicas.wait 0), chains are lost. (SIGSTOP on the replica does not hold replication back: the
// kernel still takes the stream into the stopped replica's socket.) The script puts the pair back
// after each test.
import { execFile } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterEach, afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { RedisReplicationError, RedisTokenStore } from '../../src/store/redis/index.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { uniquePrefix } from './fixtures/redis-support.js';

const PRIMARY = 6390;
const REPLICA = 6391;
const SCRIPT = fileURLToPath(new URL('../../.ci/services/redis-replica.sh', import.meta.url));
const url = (port: number): string => `redis://127.0.0.1:${port}`;

async function linked(): Promise<boolean> {
  const probe = new Redis(REPLICA, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return /master_link_status:up/.test(String(await probe.call('INFO', 'replication')));
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

async function replicaAvailable(): Promise<boolean> {
  if (await linked()) return true;
  const message = `no Redis primary and replica on 127.0.0.1:${PRIMARY} -> ${REPLICA} (start them with .ci/services/redis-replica.sh)`;
  if (process.env['CI']) throw new Error(`${message}; CI must start them (see .ci/run)`);
  console.warn(`[b24-portal-tokens tests] ${message}: skipping its tests`);
  return false;
}

/** The process id of the Redis on `port` (started by the service script, like every node here). */
async function pidOf(port: number): Promise<number> {
  const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    return Number(/process_id:(\d+)/.exec(String(await client.call('INFO', 'server')))?.[1]);
  } finally {
    client.disconnect();
  }
}

/** A loopback relay to the primary that can hold what passes (both ways), pass it on later, or drop it. */
class Relay {
  readonly #server = createServer((socket) => this.#pair(socket));
  readonly #sockets = new Set<Socket>();
  readonly #held: (() => void)[] = [];
  #holding = false;

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return (this.#server.address() as AddressInfo).port;
  }

  #pair(downstream: Socket): void {
    const upstream = connect(PRIMARY, '127.0.0.1');
    for (const [from, to] of [[downstream, upstream], [upstream, downstream]] as const) {
      this.#sockets.add(from);
      from.on('data', (chunk: Buffer) => (this.#holding ? this.#held.push(() => to.write(chunk)) : to.write(chunk)));
      from.on('error', () => undefined);
      from.on('close', () => to.destroy());
    }
  }

  hold(): void {
    this.#holding = true;
  }
  /** Passes on what was held and relays again. */
  release(): void {
    this.#holding = false;
    for (const send of this.#held.splice(0)) send();
  }
  /** Drops what was held and every connection. */
  cut(): void {
    this.#held.length = 0;
    for (const socket of this.#sockets) socket.destroy();
  }
  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

const available = await replicaAvailable();
let b24: FakeBitrix24;
let relay: Relay | undefined;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterEach(async () => {
  await relay?.close();
  await promisify(execFile)('bash', [SCRIPT], { timeout: 30_000 }); // the pair back as it was
});
afterAll(async () => {
  await b24.close();
});

/** Puts the relay between the replica and the primary (a partial resync), then holds replication back; resolves to the release. */
async function holdReplication(): Promise<() => void> {
  relay = new Relay();
  const port = await relay.listen();
  const replica = new Redis(REPLICA, '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    await replica.call('REPLICAOF', '127.0.0.1', String(port));
    for (let i = 0; i < 100 && !/master_link_status:up/.test(String(await replica.call('INFO', 'replication'))); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    replica.disconnect();
  }
  relay.hold();
  const held = relay;
  return () => held.release();
}

/** Kills the primary and promotes the replica; resolves to how many of `portals` lost their chain there. */
async function failOver(prefix: string, portals: readonly string[], beforePromotion: () => void): Promise<number> {
  process.kill(await pidOf(PRIMARY), 'SIGKILL');
  beforePromotion();
  const replica = new Redis(REPLICA, '127.0.0.1', { maxRetriesPerRequest: 3 });
  try {
    await replica.call('REPLICAOF', 'NO', 'ONE');
  } finally {
    replica.disconnect();
  }
  const standIn = new RedisTokenStore({ url: url(REPLICA), keyPrefix: prefix });
  try {
    let lost = 0;
    for (const memberId of portals) {
      const record = await standIn.get(memberId);
      if (record === undefined || b24.tokenStatus(record.refreshToken) !== 'live') lost++;
    }
    return lost;
  } finally {
    await standIn.close();
  }
}

/**
 * Ten portals with expired access tokens, seeded while replication runs; then, with replication
 * held back, five calls on each at once; the replica resumes after `holdMs` (or when the primary
 * is gone, whichever comes first; `undefined`: only then, however long the storm takes on a busy
 * machine). Resolves to the chains lost after the failover.
 */
async function stormThenFailover(wait: number, holdMs: number | undefined): Promise<{ ok: number; lost: number }> {
  const prefix = uniquePrefix(`replica${wait}`);
  const store = new RedisTokenStore({ url: url(PRIMARY), keyPrefix: prefix, timeoutMs: 8000, replicas: { wait, timeoutMs: 6000 } });
  const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, requestBudget: false });
  const portals: string[] = [];
  for (let i = 0; i < 10; i++) {
    const portal = b24.addPortal();
    await seedStore(store, b24, portal.memberId);
    portals.push(portal.memberId);
  }
  // Seeded with the wait on: the replica has every seed before the storm (WAIT for the control run).
  const seeder = new Redis(PRIMARY, '127.0.0.1');
  expect(Number(await seeder.call('WAIT', 1, 5000))).toBe(1);
  seeder.disconnect();
  for (const memberId of portals) b24.expireAccessTokens(memberId);
  const resume = await holdReplication();
  const timer = holdMs === undefined ? undefined : setTimeout(resume, holdMs);
  try {
    const results = await Promise.all(
      portals.flatMap((memberId) =>
        Array.from({ length: 5 }, async () => (await (await pool.clientFor(memberId)).actions.v2.call.make({ method: 'profile' })).isSuccess),
      ),
    );
    const lost = await failOver(prefix, portals, () => {
      clearTimeout(timer);
      relay?.cut(); // what the dead primary sent and the relay still holds never arrives
    });
    return { ok: results.filter(Boolean).length, lost };
  } finally {
    clearTimeout(timer);
    await pool.close();
    await store.close();
  }
}

describe.skipIf(!available)('RedisTokenStore with a replica', () => {
  it('waits for the replica by default, and a write it did not confirm in time rejects with RedisReplicationError but stays applied', async () => {
    const prefix = uniquePrefix('wait');
    const store = new RedisTokenStore({ url: url(PRIMARY), keyPrefix: prefix, replicas: { timeoutMs: 300 } });
    try {
      await store.upsert(sampleRecord('m1'));
      const resume = await holdReplication();
      const error: unknown = await store.update('m1', 1, { accessToken: 'SECRET-after-pause' }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RedisReplicationError);
      expect(error).toMatchObject({ applied: true, acknowledged: 0, wanted: 1, transient: true, memberId: 'm1' });
      expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain('SECRET');
      // The write is on the primary: the same conditional write now meets it as the current record.
      expect(await store.update('m1', 1, { accessToken: 'again' })).toMatchObject({ ok: false, current: { version: 2, accessToken: 'SECRET-after-pause' } });
      resume();
      expect(await store.update('m1', 2, { scope: 'crm' })).toMatchObject({ ok: true, record: { version: 3 } });
    } finally {
      await store.close();
    }
  }, 30_000);

  it('a refresh whose write the replica did not confirm in time still reaches the caller: the pool adopts the pair it finds stored', async () => {
    const prefix = uniquePrefix('unconfirmed');
    const store = new RedisTokenStore({ url: url(PRIMARY), keyPrefix: prefix, replicas: { timeoutMs: 200 } });
    const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, requestBudget: false });
    try {
      const portal = b24.addPortal();
      await seedStore(store, b24, portal.memberId);
      b24.expireAccessTokens(portal.memberId);
      b24.resetStats();
      await holdReplication();
      const calls = await Promise.all(
        Array.from({ length: 5 }, async () => (await (await pool.clientFor(portal.memberId)).actions.v2.call.make({ method: 'profile' })).isSuccess),
      );
      expect(calls.filter(Boolean)).toHaveLength(5);
      expect(b24.stats.refreshRequests).toBe(1);
      expect(b24.stats.refreshReuse).toBe(0);
      const stored = await store.get(portal.memberId);
      expect(stored?.version).toBe(2);
      expect(b24.tokenStatus(stored?.refreshToken ?? '')).toBe('live');
    } finally {
      await pool.close();
      await store.close();
    }
  }, 30_000);

  it('10 portals x 5 calls refreshed while the replica is held back, the primary killed, the replica promoted: 0 chains lost', async () => {
    const { ok, lost } = await stormThenFailover(1, 1500);
    expect(ok).toBe(50);
    expect(lost, 'every stored refresh token is the live one at the stand-in').toBe(0);
  }, 60_000);

  it('the same without the wait (replicas.wait 0) loses chains: the hazard the wait closes', async () => {
    const { ok, lost } = await stormThenFailover(0, undefined);
    expect(ok).toBe(50);
    expect(lost, 'every chain refreshed during the hold').toBe(10);
  }, 60_000);
});
