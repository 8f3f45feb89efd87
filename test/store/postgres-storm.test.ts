// Four real worker processes, each with its own PortalClientPool on one PostgresTokenStore, storm one
// expired portal through the stand-in Bitrix24: one refresh request in total, no refresh-token
// reuse, every call succeeds; the other workers adopt the stored pair.
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolStats } from '../../src/pool-events.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { seedPortal } from '../pool/helpers.js';
import { serviceAvailable } from '../support/services.js';
import { dropTables, enterGate, PG_URL, uniquePrefix } from './fixtures/pg-support.js';

const available = await serviceAvailable('postgres');
const worker = fileURLToPath(new URL('./fixtures/pg-storm-worker.ts', import.meta.url));

interface WorkerOutcome {
  ok: number;
  failed: number;
  stats: PoolStats;
}

describe.skipIf(!available)('a refresh storm through PostgreSQL', () => {
  let b24: FakeBitrix24;
  let leave: () => Promise<void> = () => Promise.resolve();
  const prefix = uniquePrefix('storm');

  beforeAll(async () => {
    leave = await enterGate('shared');
    b24 = await FakeBitrix24.start();
  }, 200_000);
  afterAll(async () => {
    await b24?.close();
    await dropTables(prefix);
    await leave();
  });

  function startWorker(memberId: string, calls: number) {
    const child: ChildProcessWithoutNullStreams = spawn(
      process.execPath,
      ['--import', 'tsx', worker, PG_URL, prefix, memberId, String(calls)],
      { env: { ...process.env, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret }, stdio: 'pipe' },
    );
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const nextLine = async (): Promise<string> => {
      const { value, done } = await lines.next();
      if (done) throw new Error(`worker ended early: ${stderr}`);
      return value;
    };
    return { child, nextLine };
  }

  it('4 worker processes x 25 concurrent calls on one expired portal: 1 refresh, 0 reuse, 100 of 100 succeed', async () => {
    const store = new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: prefix });
    const portal = b24.addPortal();
    try {
      const seeded = await seedPortal(store, b24, portal.memberId, b24.issueChain(portal.memberId));
      const workers = Array.from({ length: 4 }, () => startWorker(portal.memberId, 25));
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
      // The one refresh moved the stored chain on by exactly one conditional write.
      expect((await store.get(portal.memberId))?.version).toBe(seeded.version + 1);
    } finally {
      await store.close();
    }
  }, 90_000);
});
