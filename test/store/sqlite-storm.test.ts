// Four real worker processes, each with its own pool on one SQLite database file, storm one expired
// portal through the stand-in Bitrix24: one refresh request in total, no reuse, every call succeeds.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { PoolStats } from '../../src/pool-events.js';
import { SqliteTokenStore } from '../../src/store/sqlite/index.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { seedPortal } from '../pool/helpers.js';

const worker = fileURLToPath(new URL('./fixtures/sqlite-storm-worker.ts', import.meta.url));
let b24: FakeBitrix24;
let dir: string;

beforeAll(async () => {
  b24 = await FakeBitrix24.start();
  dir = await mkdtemp(join(tmpdir(), 'b24pt-sqlite-storm-'));
});
afterAll(async () => {
  await b24.close();
  await rm(dir, { recursive: true, force: true });
});

interface WorkerOutcome {
  ok: number;
  failed: number;
  stats: PoolStats;
}

function startWorker(filename: string, memberId: string, calls: number) {
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    ['--import', 'tsx', worker, filename, memberId, String(calls)],
    { env: { ...process.env, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret }, stdio: 'pipe' },
  );
  const iterator = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const nextLine = async (): Promise<string> => {
    const { value, done } = await iterator.next();
    if (done === true) throw new Error(`worker ended early: ${stderr}`);
    return value;
  };
  return { child, nextLine };
}

it('4 worker processes x 25 concurrent calls on one expired portal in SQLite: 1 refresh, 0 reuse, 100 of 100 succeed', async () => {
  const filename = join(dir, 'tokens.sqlite');
  const store = new SqliteTokenStore({ filename });
  const portal = b24.addPortal();
  const seeded = await seedPortal(store, b24, portal.memberId, b24.issueChain(portal.memberId));

  const workers = Array.from({ length: 4 }, () => startWorker(filename, portal.memberId, 25));
  for (const w of workers) expect(await w.nextLine()).toBe('ready');
  b24.resetStats();
  b24.expireAccessTokens(portal.memberId);
  for (const w of workers) w.child.stdin.write('go\n');
  const outcomes = await Promise.all(workers.map(async (w) => JSON.parse(await w.nextLine()) as WorkerOutcome));

  expect(outcomes.reduce((sum, o) => sum + o.ok, 0)).toBe(100);
  expect(outcomes.reduce((sum, o) => sum + o.failed, 0)).toBe(0);
  expect(b24.stats.refreshRequests).toBe(1);
  expect(b24.stats.refreshReuse).toBe(0);
  // Exactly one worker refreshed; every other one took the stored pair instead of refreshing again.
  expect(outcomes.map((o) => o.stats.refreshes).sort()).toEqual([0, 0, 0, 1]);
  for (const o of outcomes.filter((o) => o.stats.refreshes === 0)) expect(o.stats.adoptions).toBeGreaterThanOrEqual(1);
  // The refreshed pair is what the file holds now, and no lock is left behind.
  const stored = await store.get(portal.memberId);
  expect(stored?.version).toBeGreaterThan(seeded.version);
  expect(stored?.refreshToken).not.toBe(seeded.refreshToken);
  expect(await store.tryLock(portal.memberId, 1000)).toBeDefined();
  await store.close();
}, 60_000);
