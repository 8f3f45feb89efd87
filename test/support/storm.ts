// The cross-process refresh storm every shared store must pass: 4 worker processes, 25 concurrent
// calls each, on one portal whose access token the stand-in just expired: 1 refresh request in
// total, 0 refresh-token reuse, 100 of 100 calls succeed, the other workers adopt.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { PoolStats } from '../../src/pool-events.js';
import type { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { seedStore } from '../../src/testing/fake-bitrix24.js';
import { openStore, type StoreSpec } from './store-specs.js';
import { nodeArgs } from './children.js';

const worker = fileURLToPath(new URL('../pool/fixtures/storm-worker.ts', import.meta.url));

interface WorkerOutcome {
  ok: number;
  failed: number;
  stats: PoolStats;
}

function startWorker(b24: FakeBitrix24, spec: StoreSpec, memberId: string, calls: number, userId: number | undefined) {
  const args = [JSON.stringify(spec), memberId, String(calls), ...(userId === undefined ? [] : [String(userId)])];
  const child = spawn(process.execPath, [...nodeArgs(worker), ...args], {
    env: { ...process.env, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret, B24_URL: b24.url },
    stdio: 'pipe',
  });
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

/**
 * Runs the storm on the store `spec` names and asserts its counts; with `userId`, on that user's
 * own chain of the portal (the portal's chain must stay untouched).
 */
export async function expectOneRefreshAcrossProcesses(
  b24: FakeBitrix24,
  spec: StoreSpec,
  options: { workers?: number; calls?: number; userId?: number } = {},
): Promise<void> {
  const { workers = 4, calls = 25, userId } = options;
  const store = openStore(spec);
  try {
    const portal = b24.addPortal({ users: [1, 7], admins: [1] });
    await seedStore(store, b24, portal.memberId);
    const portalBefore = JSON.stringify(await store.get(portal.memberId));
    const { record: seeded } = userId === undefined ? { record: JSON.parse(portalBefore) as { version: number } } : await seedStore(store, b24, portal.memberId, { userId });
    const key = userId === undefined ? portal.memberId : { memberId: portal.memberId, chain: `user:${userId}` as const };
    const running = Array.from({ length: workers }, () => startWorker(b24, spec, portal.memberId, calls, userId));
    for (const w of running) expect(await w.nextLine()).toBe('ready');
    b24.resetStats();
    b24.expireAccessTokens(portal.memberId, userId === undefined ? {} : { userId });
    for (const w of running) w.child.stdin.write('go\n');
    const outcomes = await Promise.all(running.map(async (w) => JSON.parse(await w.nextLine()) as WorkerOutcome));

    expect(outcomes.reduce((sum, o) => sum + o.ok, 0), 'every call succeeds').toBe(workers * calls);
    expect(outcomes.reduce((sum, o) => sum + o.failed, 0)).toBe(0);
    expect(b24.stats.refreshRequests, 'one refresh request in total').toBe(1);
    expect(b24.stats.refreshReuse, 'no refresh token sent twice').toBe(0);
    // Exactly one worker refreshed; every other one took the stored pair instead of refreshing again.
    expect(outcomes.map((o) => o.stats.refreshes).sort()).toEqual([...Array<number>(workers - 1).fill(0), 1]);
    for (const o of outcomes.filter((o) => o.stats.refreshes === 0)) expect(o.stats.adoptions).toBeGreaterThanOrEqual(1);
    // The one refresh moved the stored chain on by exactly one conditional write.
    expect((await store.get(key))?.version).toBe(seeded.version + 1);
    if (userId !== undefined) expect(JSON.stringify(await store.get(portal.memberId)), "the portal's chain is untouched").toBe(portalBefore);
  } finally {
    await store.close?.();
  }
}
