// A pool worker in its own process (fixtures/coherence-worker.ts) on a shared PostgreSQL or Redis
// store, driven one command per stdin line with one JSON answer line per command.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { expect } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { seedStore, type FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { dropTables, enterGate } from '../store/fixtures/pg-support.js';
import { dropPrefix, inspector } from '../store/fixtures/redis-support.js';
import { SERVICES } from '../support/services.js';
import { nodeArgs } from '../support/children.js';

const worker = fileURLToPath(new URL('./fixtures/coherence-worker.ts', import.meta.url));

/** A running worker: its process, and `ask`, which sends one command and awaits its answer. */
export interface WorkerProcess {
  readonly child: ChildProcessWithoutNullStreams;
  ask(command: string): Promise<Record<string, unknown>>;
  /** Sends `exit` and waits for the process to end. */
  stop(): Promise<void>;
}

/** Starts a worker with its own pool on the store `kind` (`postgres` | `redis`) at `url`/`prefix`. */
export function startWorker(b24: FakeBitrix24, kind: string, url: string, prefix: string, memberId: string, listenUrl?: string): WorkerProcess {
  const child = spawn(process.execPath, [...nodeArgs(worker), kind, url, prefix, memberId], {
    env: { ...process.env, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret, B24_URL: b24.url, ...(listenUrl === undefined ? {} : { B24_PG_LISTEN_URL: listenUrl }) },
    stdio: 'pipe',
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const ended = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    ask: async (command) => {
      child.stdin.write(`${command}\n`);
      const { value, done } = await lines.next();
      if (done) throw new Error(`worker ended early: ${stderr}`);
      return JSON.parse(value) as Record<string, unknown>;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.stdin.write('exit\n');
      }
      await ended;
    },
  };
}

/** A shared store the workers can open: how to open, clean up and serialise access to it. */
export interface ClusterStore {
  readonly name: string;
  readonly available: boolean;
  readonly kind: 'postgres' | 'redis';
  readonly url: string;
  readonly prefix: string;
  readonly open: (prefix: string) => TokenStore;
  readonly cleanup: (prefix: string) => Promise<void>;
  /** Waits for the service's test gate (PostgreSQL tests take turns); resolves to the release. */
  readonly gate: () => Promise<() => Promise<void>>;
}

/** PostgreSQL and Redis as cluster stores, with table/key prefixes unique to `tag` and this process. */
export function clusterStores(tag: string, available: { postgres: boolean; redis: boolean }): ClusterStore[] {
  return [
    {
      name: 'PostgreSQL',
      available: available.postgres,
      kind: 'postgres',
      url: SERVICES.postgres.url,
      prefix: `${tag}_${process.pid}`,
      open: (prefix) => new PostgresTokenStore({ connectionString: SERVICES.postgres.url, tablePrefix: prefix }),
      cleanup: (prefix) => dropTables(prefix),
      gate: () => enterGate('shared'),
    },
    {
      name: 'Redis',
      available: available.redis,
      kind: 'redis',
      url: SERVICES.redis.url,
      prefix: `${tag}-${process.pid}`,
      open: (prefix) => new RedisTokenStore({ url: SERVICES.redis.url, keyPrefix: prefix }),
      cleanup: async (prefix) => {
        const client = inspector();
        await dropPrefix(client, prefix);
        client.disconnect();
      },
      gate: () => Promise.resolve(() => Promise.resolve()),
    },
  ];
}

/**
 * The coherence case, counted at the stand-in: worker A (this process, on `store`) refreshes the
 * portal, then worker B (`start(memberId)`, another process) makes ten calls with no refused token
 * and no refresh; A handles an uninstall, then B's next clientFor throws PortalNotInstalledError
 * without a REST call.
 */
export async function expectCoherence(b24: FakeBitrix24, store: TokenStore, start: (memberId: string) => WorkerProcess): Promise<void> {
  const a = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger });
  const portal = b24.addPortal();
  await seedStore(store, b24, portal.memberId);
  const b = start(portal.memberId);
  try {
    expect(await b.ask('calls 1')).toMatchObject({ ok: 1 });

    // A refreshes the portal; B's cached client must follow without a refused call.
    b24.expireAccessTokens(portal.memberId);
    expect((await (await a.clientFor(portal.memberId)).actions.v2.call.make({ method: 'profile' })).isSuccess).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the notification crosses processes
    const refusedBefore = b24.stats.rest.invalidToken + b24.stats.rest.expiredToken;
    const tenCalls = await b.ask('calls 10');
    expect(tenCalls).toMatchObject({ ok: 10 });
    expect(b24.stats.rest.invalidToken + b24.stats.rest.expiredToken, 'refused calls in worker B').toBe(refusedBefore);
    expect((tenCalls['stats'] as { refreshes: number }).refreshes).toBe(0);

    // A handles an uninstall; B's next clientFor knows without calling the portal.
    await store.deletePortal(portal.memberId);
    a.notify({ type: 'uninstalled', memberId: portal.memberId });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const restBefore = b24.stats.restByMethod['profile'] ?? 0;
    expect(await b.ask('clientFor')).toEqual({ error: 'PORTAL_NOT_INSTALLED' });
    expect(b24.stats.restByMethod['profile'] ?? 0).toBe(restBefore);
  } finally {
    await b.stop();
    await a.close();
  }
}
