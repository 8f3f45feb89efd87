// Four real worker processes, each with its own pool on one RedisTokenStore, storm one expired portal:
// one refresh request in total, no refresh-token reuse, every call succeeds; the others adopt.
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolStats } from '../../src/pool/events.js';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { seedPortal } from '../pool/helpers.js';
import { serviceAvailable } from '../support/services.js';
import { dropPrefix, inspector, REDIS_URL, uniquePrefix } from './fixtures/redis-support.js';

const available = await serviceAvailable('redis');
const worker = fileURLToPath(new URL('./fixtures/redis-storm-worker.ts', import.meta.url));
const keyPrefix = uniquePrefix('storm');
let b24: FakeBitrix24;

interface WorkerOutcome {
  ok: number;
  failed: number;
  stats: PoolStats;
}

function startWorker(memberId: string, calls: number) {
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    ['--import', 'tsx', worker, REDIS_URL, keyPrefix, memberId, String(calls)],
    { env: { ...process.env, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret }, stdio: 'pipe' },
  );
  const lines = createInterface({ input: child.stdout });
  const iterator = lines[Symbol.asyncIterator]();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const nextLine = async (): Promise<string> => {
    const { value, done } = await iterator.next();
    if (done) throw new Error(`worker ended early: ${stderr}`);
    return value;
  };
  return { child, nextLine };
}

describe.skipIf(!available)('refresh storm on RedisTokenStore', () => {
  beforeAll(async () => {
    b24 = await FakeBitrix24.start();
  });
  afterAll(async () => {
    await b24?.close();
    const admin = inspector();
    await dropPrefix(admin, keyPrefix);
    admin.disconnect();
  });

  it('4 worker processes x 25 concurrent calls on one expired portal: 1 refresh, 0 reuse, 100 of 100 succeed', async () => {
    const store = new RedisTokenStore({ url: REDIS_URL, keyPrefix });
    const portal = b24.addPortal();
    const seeded = await seedPortal(store, b24, portal.memberId, b24.issueChain(portal.memberId));

    const workers = Array.from({ length: 4 }, () => startWorker(portal.memberId, 25));
    try {
      for (const w of workers) expect(await w.nextLine()).toBe('ready');
      b24.resetStats();
      b24.expireAccessTokens(portal.memberId);
      for (const w of workers) w.child.stdin.write('go\n');
      const outcomes = await Promise.all(workers.map(async (w) => JSON.parse(await w.nextLine()) as WorkerOutcome));

      expect(outcomes.reduce((sum, o) => sum + o.ok, 0)).toBe(100);
      expect(outcomes.reduce((sum, o) => sum + o.failed, 0)).toBe(0);
      expect(b24.stats.refreshRequests).toBe(1);
      expect(b24.stats.refreshReuse).toBe(0);
      expect(outcomes.map((o) => o.stats.refreshes).sort()).toEqual([0, 0, 0, 1]);
      for (const o of outcomes.filter((o) => o.stats.refreshes === 0)) expect(o.stats.adoptions).toBeGreaterThanOrEqual(1);
      // The one refresh went through the conditional write: one version later, a new pair stored.
      const stored = await store.get(portal.memberId);
      expect(stored?.version).toBe(seeded.version + 1);
      expect(stored?.refreshToken).not.toBe(seeded.refreshToken);
    } finally {
      for (const w of workers) w.child.kill();
      await store.close();
    }
  }, 60_000);
});
