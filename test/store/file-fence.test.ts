// FileTokenStore: the fence is in the write. A real writer process is stopped with SIGSTOP inside a
// conditional write, holding the internal write lease, until the lease has lapsed and this process
// has written newer versions (an uninstall's tombstone, a verified reinstall, a refresh); woken with
// SIGCONT, its stale write must come back as a conflict and leave nothing on disk.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FileTokenStore } from '../../src/store/file/store.js';
import type { ConditionalWriteResult, PortalRecord } from '../../src/store/token-store.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { everything, hex } from './fixtures/file-layout.js';
import { nodeArgs } from '../support/children.js';

const script = fileURLToPath(new URL('./fixtures/file-writer-child.ts', import.meta.url));
const STALE = 'STALE-WRITER-TOKEN-41c9';

let base: string;
let directory: string;
const children: ChildProcessWithoutNullStreams[] = [];

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'b24pt-file-fence-'));
  directory = join(base, 'portals');
});

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  }
  await rm(base, { recursive: true, force: true });
});

/** Starts the child's conditional write and returns once it is paused at `stage`, then SIGSTOPs it. */
async function stoppedWriter(stage: string, expectedVersion: number) {
  const child = spawn(process.execPath, [...nodeArgs(script), directory, 'member', String(expectedVersion), STALE, stage], {
    stdio: 'pipe',
  });
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const { value, done } = await lines.next();
    if (done === true) throw new Error(`the writer ended early: ${stderr}`);
    return JSON.parse(value) as Record<string, unknown>;
  };
  expect(await next(), 'the writer reached the stage holding the lease').toStrictEqual({ paused: stage });
  child.kill('SIGSTOP');
  // Queued while stopped: the line that lets the write go on once the process runs again.
  child.stdin.write('go\n');
  return { child, next };
}

/** Waits (real time: that is the point) until the stopped writer's internal lease has lapsed. */
async function pastTheLease(): Promise<void> {
  const lease = JSON.parse(await readFile(join(directory, `${hex('member')}.wlock`), 'utf8')) as { expiresAt: number };
  await sleep(Math.max(0, lease.expiresAt - Date.now()) + 100);
}

async function staleWriteAfter(stage: string, newer: (store: FileTokenStore) => Promise<PortalRecord>): Promise<void> {
  const store = new FileTokenStore({ directory });
  await store.upsert(sampleRecord('member', { accessToken: 'installed' }));
  const { child, next } = await stoppedWriter(stage, 1);
  await pastTheLease();
  const newest = await newer(store);
  child.kill('SIGCONT');
  const outcome = await next();
  expect(outcome, 'the stale write ended in a conflict, not an error').toHaveProperty('result');
  const result = outcome['result'] as ConditionalWriteResult;
  expect(result.ok, 'the stale conditional write was refused').toBe(false);
  expect(!result.ok && result.current, 'the conflict reports the newest record').toStrictEqual(newest);
  expect(await store.get('member'), 'the newest record is what is stored').toStrictEqual(newest);
  expect(await everything(directory), 'the stale write left nothing on disk').not.toContain(STALE);
  expect((await store.update('member', newest.version, { scope: 'crm' })).ok, 'the chain goes on from the newest').toBe(true);
}

/** An uninstall's tombstone, a verified reinstall, a refresh: version 1 -> tombstone 1 -> 2 -> 3. */
async function uninstallReinstallRefresh(store: FileTokenStore): Promise<PortalRecord> {
  expect(await store.deletePortal('member')).toBe(1);
  const reinstalled = await store.upsert(sampleRecord('member', { accessToken: 'reinstalled' }));
  expect(reinstalled.version).toBe(2);
  const refreshed = await store.update('member', 2, { accessToken: 'refreshed' });
  if (!refreshed.ok) throw new Error('the refresh conflicted');
  return refreshed.record;
}

// The three ways the fence refuses the stale write: the writer that took over the lapsed lease
// removed its temp file (nothing to link); its generation was already written and pruned (it links,
// sees a newer generation and takes its file back); its generation is taken (link fails with EEXIST).
it('a writer stopped with its new content written, not yet linked, cannot land it after an uninstall and reinstall', async () => {
  await staleWriteAfter('before-link', uninstallReinstallRefresh);
}, 60_000);

it('a writer stopped with its new content ready, before its temp file, cannot land it after an uninstall and reinstall', async () => {
  await staleWriteAfter('content-ready', uninstallReinstallRefresh);
}, 60_000);

it('a writer stopped with its new content ready cannot land it over one newer write of the same version', async () => {
  await staleWriteAfter('content-ready', async (store) => {
    const refreshed = await store.update('member', 1, { accessToken: 'refreshed' });
    if (!refreshed.ok) throw new Error('the refresh conflicted');
    return refreshed.record;
  });
}, 60_000);

it('readers racing 300 writes of another process (each pruning the version before it) always read a record, never an older one', async () => {
  const reader = new FileTokenStore({ directory });
  await reader.upsert(sampleRecord('member'));
  const child = spawn(process.execPath, [...nodeArgs(script), directory, 'member', '1', 'streamed', 'stream:300'], { stdio: 'pipe' });
  children.push(child);
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let writing = true;
  void exited.then(() => (writing = false));
  const readLoop = async (): Promise<number[]> => {
    const seen: number[] = [];
    while (writing) seen.push((await reader.get('member'))?.version ?? -1);
    return seen;
  };
  // Several reads in flight at once, so some land between a listing and a pruning.
  const loops = await Promise.all(Array.from({ length: 4 }, readLoop));
  expect(JSON.parse(stdout), 'the writer made its 300 writes').toMatchObject({ result: { ok: true, record: { version: 301 } } });
  for (const seen of loops) {
    expect(seen.filter((version) => version < 1), 'every read found the record').toStrictEqual([]);
    expect(seen.every((version, i) => i === 0 || version >= (seen[i - 1] as number)), 'versions never went back').toBe(true);
  }
  expect((await reader.get('member'))?.version).toBe(301);
}, 120_000);
