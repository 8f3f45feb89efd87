// SqliteTokenStore across real processes on one database file: several processes creating the
// schema of a new file at once, a lock holder killed with SIGKILL, and a holder paused past its lease
// whose late write is refused by the conditional write.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { SqliteTokenStore } from '../../src/store/sqlite/index.js';
import type { ConditionalWriteResult, PortalRecord } from '../../src/store/token-store.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { nodeArgs } from '../support/children.js';

const script = fileURLToPath(new URL('./fixtures/sqlite-child.ts', import.meta.url));

interface Lease {
  token: string;
  expiresAt: number;
}

class Child {
  readonly process: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;
  readonly exited: Promise<void>;
  #stderr = '';

  constructor(filename: string) {
    this.process = spawn(process.execPath, [...nodeArgs(script), filename], { stdio: 'pipe' });
    this.process.stderr.on('data', (chunk: Buffer) => (this.#stderr += chunk.toString()));
    this.#lines = createInterface({ input: this.process.stdout })[Symbol.asyncIterator]();
    this.exited = new Promise((resolve) => this.process.once('exit', () => resolve()));
  }

  /** Sends a command without waiting for its answer (for a stopped process). */
  send(command: Record<string, unknown>): void {
    this.process.stdin.write(`${JSON.stringify(command)}\n`);
  }

  /** The next answer. */
  async answer<T>(): Promise<T> {
    const { value, done } = await this.#lines.next();
    if (done === true) throw new Error(`child ended early: ${this.#stderr}`);
    const reply = JSON.parse(value) as { ok: true; value: T } | { ok: false; error: string };
    if (!reply.ok) throw new Error(`child failed: ${reply.error}`);
    return reply.value;
  }

  async call<T>(command: Record<string, unknown>): Promise<T> {
    this.send(command);
    return this.answer<T>();
  }

  async stop(): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) {
      this.process.kill('SIGCONT');
      this.process.kill('SIGKILL');
    }
    await this.exited;
  }
}

let dir: string;
let filename: string;
const children: Child[] = [];

async function startChild(): Promise<Child> {
  const child = new Child(filename);
  children.push(child);
  expect(await child.answer<string>()).toBe('started');
  return child;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'b24pt-sqlite-proc-'));
  filename = join(dir, 'tokens.sqlite');
});

afterEach(async () => {
  await Promise.all(children.splice(0).map((child) => child.stop()));
  await rm(dir, { recursive: true, force: true });
});

it('4 processes opening a new file at the same instant create one schema and all work (5 rounds)', async () => {
  const racers = await Promise.all(Array.from({ length: 4 }, () => startChild()));
  for (let round = 0; round < 5; round++) {
    const file = join(dir, `round-${round}.sqlite`);
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    const startAt = Date.now() + 200;
    await Promise.all(racers.map((child) => child.call({ op: 'ready', filename: file, startAt })));
    const written = await Promise.all(
      racers.map((child, i) => child.call<PortalRecord>({ op: 'upsert', memberId: `m-${i}` })),
    );
    expect(written.map((record) => record.version)).toStrictEqual([1, 1, 1, 1]);

    const store = new SqliteTokenStore({ filename: file });
    const page = await store.list();
    expect(page.records.map((record) => record.memberId)).toStrictEqual(['m-0', 'm-1', 'm-2', 'm-3']);
    await store.close();
    const db = new Database(file, { readonly: true });
    try {
      expect(db.prepare('SELECT key, value FROM b24pt_meta').all()).toStrictEqual([{ key: 'schema_version', value: 3 }]);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  }
}, 60_000);

it('the lock of a holder killed with SIGKILL is taken over by another process once its lease lapses', async () => {
  const holder = await startChild();
  const store = new SqliteTokenStore({ filename });
  await store.ready();
  const lease = await holder.call<Lease | null>({ op: 'lock', memberId: 'member', ttlMs: 1500 });
  expect(lease).not.toBeNull();
  expect(await store.tryLock('member', 1000)).toBeUndefined();
  await holder.stop(); // SIGKILL: no release runs
  expect(holder.process.signalCode).toBe('SIGKILL');
  await sleep(Math.max(0, (lease as Lease).expiresAt - Date.now()) + 50);
  const taken = await store.tryLock('member', 10_000);
  expect(taken).toBeDefined();
  expect(taken?.token).not.toBe(lease?.token);
  // The new lease excludes a third process in turn.
  const third = await startChild();
  expect(await third.call<Lease | null>({ op: 'lock', memberId: 'member', ttlMs: 1000 })).toBeNull();
  await taken?.release();
  expect(await third.call<Lease | null>({ op: 'lock', memberId: 'member', ttlMs: 1000 })).not.toBeNull();
  await store.close();
}, 60_000);

it('a holder paused past its lease cannot overwrite the new holder, renew, or free its lock', async () => {
  const store = new SqliteTokenStore({ filename });
  await store.upsert(sampleRecord('member', { accessToken: 'first' }));
  const paused = await startChild();
  const lease = await paused.call<Lease | null>({ op: 'lock', memberId: 'member', ttlMs: 300 });
  expect(lease).not.toBeNull();
  expect((await paused.call<PortalRecord>({ op: 'get', memberId: 'member' })).version).toBe(1);

  paused.process.kill('SIGSTOP');
  // Queued while stopped: the write it would make on waking, then its attempts to keep the lock.
  paused.send({ op: 'update', memberId: 'member', expectedVersion: 1, accessToken: 'stale-holder' });
  paused.send({ op: 'renew', memberId: 'member', token: lease?.token, ttlMs: 60_000 });
  paused.send({ op: 'release', memberId: 'member', token: lease?.token });
  await sleep(Math.max(0, (lease as Lease).expiresAt - Date.now()) + 50);

  const taken = await store.tryLock('member', 60_000);
  expect(taken).toBeDefined();
  const written = await store.update('member', 1, { accessToken: 'new-holder' });
  expect(written.ok && written.record.version).toBe(2);

  paused.process.kill('SIGCONT');
  const late = await paused.answer<ConditionalWriteResult>();
  expect(late.ok).toBe(false);
  expect(!late.ok && late.current?.accessToken).toBe('new-holder');
  expect(await paused.answer<boolean>()).toBe(false);
  await paused.answer<null>();
  // Its release matched nothing: the new holder still holds the lock.
  expect(await store.tryLock('member', 1000)).toBeUndefined();
  expect(await store.get('member')).toMatchObject({ accessToken: 'new-holder', version: 2 });
  expect(await taken?.renew?.(60_000)).toBe(true);
  await taken?.release();
  await store.close();
}, 60_000);
