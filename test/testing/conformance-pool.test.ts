// The conformance suite's child processes, reused from test to test (src/testing/conformance/pool.ts):
// a healthy child reopens the next test's store and keeps nothing of the last one; a killed child, a
// child of a failed test or one whose request timed out is never handed out again; an opener that
// cannot open a second store in one process gets a fresh process per test.
import { afterEach, describe, expect, it } from 'vitest';
import { defaultExecArgv, moduleUrl, StoreChild } from '../../src/testing/conformance/child.js';
import { ChildPool } from '../../src/testing/conformance/pool.js';
import { childModule } from '../support/children.js';

const opener = childModule(new URL('./fixtures/open-named-store.ts', import.meta.url));
const url = moduleUrl(opener.module);
const launch = (): Promise<StoreChild> => StoreChild.start({ module: url, open: false }, opener.execArgv ?? defaultExecArgv(url));

type Lease = { token: string } | null;
const owner = (child: StoreChild): Promise<{ store: string; pid: number }> => child.call('get', { memberId: 'm1' });

let pool: ChildPool;

afterEach(async () => {
  await pool.drain();
});

describe('the conformance child pool', () => {
  it("reopens a healthy child for the next test, with the leases of the last test's store released", async () => {
    pool = new ChildPool(launch);
    pool.warm();
    const first = await pool.take({ name: 'a' });
    expect(await owner(first), 'the child opened the store for the first args').toMatchObject({ store: 'a', pid: first.pid });
    expect(await first.call<Lease>('tryLock', { memberId: 'm1', ttlMs: 60_000 }), 'the first test takes the lock').not.toBeNull();
    await pool.endTest(false);

    const second = await pool.take({ name: 'a' });
    expect(second.pid, 'the healthy child is reused').toBe(first.pid);
    expect(pool.starts, 'one process served both tests').toBe(1);
    expect(second.opens, 'the reused child opened a second store').toBe(2);
    expect(
      await second.call<Lease>('tryLock', { memberId: 'm1', ttlMs: 60_000 }),
      'the lease the last test left held was released when its store closed',
    ).not.toBeNull();
    await pool.endTest(false);

    const third = await pool.take({ name: 'b' });
    expect(await owner(third), "the reused child serves the new args' store").toMatchObject({ store: 'b', pid: first.pid });
  }, 30_000);

  it('never hands out again a killed child, a child of a failed test or one whose request timed out', async () => {
    pool = new ChildPool(launch);
    const killed = await pool.take({ name: 'a' });
    await killed.kill();
    await pool.endTest(false);
    const afterKill = await pool.take({ name: 'a' });
    expect(afterKill.pid, 'a killed child is replaced').not.toBe(killed.pid);

    await pool.endTest(true);
    const afterFailure = await pool.take({ name: 'a' });
    expect(afterFailure.pid, "a failed test's child is replaced").not.toBe(afterKill.pid);

    // A race that starts in a minute answers long after the 50 ms the call allows.
    const late = afterFailure.call('race', { memberId: 'm1', expectedVersion: 1, attempts: 1, startAt: Date.now() + 60_000, tag: 't' }, 50);
    await expect(late, 'the call times out').rejects.toThrow(/did not answer race within 50 ms/);
    expect(afterFailure.reusable, 'a child whose request timed out is not reusable').toBe(false);
    await pool.endTest(false);
    const afterTimeout = await pool.take({ name: 'a' });
    expect(afterTimeout.pid, 'a child whose request timed out is replaced').not.toBe(afterFailure.pid);
    expect(pool.starts, 'every replacement is a new process').toBe(4);
  }, 60_000);

  it('starts a fresh process per test for an opener that cannot open a second store in one process', async () => {
    pool = new ChildPool(launch);
    const first = await pool.take({ name: 'a', cached: true });
    await pool.endTest(false);
    const second = await pool.take({ name: 'a', cached: true });
    expect(second.pid, 'the refused reopen is replaced by a fresh process').not.toBe(first.pid);
    expect(await owner(second), 'whose store works').toMatchObject({ store: 'a', pid: second.pid });
    await pool.endTest(false);
    const third = await pool.take({ name: 'b' });
    expect(third.pid, 'and the block reuses no child after that').not.toBe(second.pid);
    expect(pool.starts).toBe(3);
  }, 60_000);
});
