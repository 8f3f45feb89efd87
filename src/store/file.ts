// FileTokenStore: the embedded default store. One JSON file per portal in one directory, written
// atomically (temp file, fsync, rename, fsync directory), with per-portal lock files shared across processes.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PortalTokensError, StoreError } from '../errors.js';
import { errorCode, FileLock, unlinkIfPresent } from './file-lock.js';
import {
  applyPatch,
  checkExpectedVersion,
  checkListOptions,
  checkMemberId,
  checkPatch,
  checkRecordInput,
  checkTtlMs,
  nextVersion,
  readStoredRecord,
} from './record-checks.js';
import type {
  ConditionalWriteResult,
  PortalListOptions,
  PortalListPage,
  PortalRecord,
  PortalRecordInput,
  PortalRecordPatch,
  StoreCapabilities,
  StoreLease,
  TokenStore,
} from './token-store.js';

/** Options of {@link FileTokenStore}. */
export interface FileTokenStoreOptions {
  /**
   * The directory that holds the portals' files. Created with mode `0700` if missing. Every process
   * that opens a store on the same directory shares its records and locks.
   */
  readonly directory: string;
  /**
   * The clock lock leases are measured against, in unix milliseconds. Every process sharing the
   * directory must use the same clock; inject one only in tests.
   * @defaultValue `Date.now`
   */
  readonly now?: (() => number) | undefined;
  /**
   * The permission bits of record and lock files. The files hold live tokens: keep them private.
   * @defaultValue `0o600`
   */
  readonly fileMode?: number | undefined;
}

/** The longest `memberId` a file name can carry (hex doubles it; names stay well under 255 bytes). */
const MAX_MEMBER_ID_BYTES = 100;
/** Internal write-lock lease: far longer than a read-compare-write, short enough to survive a crash. */
const WRITE_LEASE_MS = 5_000;
/** How long a write waits for the internal lock: longer than the lease, so a crashed writer is outlived. */
const WRITE_LOCK_WAIT_MS = 10_000;
/** The on-disk format of a record file, so a later release can migrate old files. */
const FORMAT = 1;

/** What a portal's file holds: its record, or the tombstone of a deleted one (no tokens). */
type FileContent =
  | { readonly format: typeof FORMAT; readonly record: PortalRecord }
  | { readonly format: typeof FORMAT; readonly deleted: { readonly memberId: string; readonly version: number } };
const RECORD_FILE = /^((?:[0-9a-f]{2})+)\.json$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The embedded default {@link TokenStore}: one file per portal in a directory of your choice.
 *
 * Each portal's record is a JSON file named after the hex encoding of its `memberId` (so no
 * `memberId` can ever name a path outside the directory), mode `0600`. Every write goes to a temp
 * file in the same directory, is fsynced, renamed over the record and the directory fsynced: a crash
 * leaves the old record or the new one, never a mix. A write touches only its portal's files, so it
 * costs the same with ten portals or a hundred thousand.
 *
 * Conditional writes, upserts and deletes run under an internal per-portal write lock (a lock file,
 * separate from the public {@link FileTokenStore.tryLock} lock), which makes them atomic across every
 * process that opens the same directory on the same machine. Network file systems are not
 * supported: their `link()` and `rename()` guarantees vary.
 *
 * `memberId`s longer than 100 UTF-8 bytes are rejected with a `TypeError` (real ones are 32 characters).
 *
 * @example
 * ```ts
 * const store = new FileTokenStore({ directory: '/var/lib/my-app/portals' });
 * const pool = new PortalClientPool({ store, clientId, clientSecret });
 * ```
 */
export class FileTokenStore implements TokenStore {
  /** Locks and listing work, and are shared by every process that opens the same directory. */
  readonly capabilities: StoreCapabilities = { lock: true, crossProcess: true, list: true };
  /** The absolute path of the directory holding the records. */
  readonly directory: string;

  readonly #now: () => number;
  readonly #fileMode: number;
  #ready: Promise<void> | undefined;
  // Serialises this process's writes per portal, so they queue in memory instead of spinning on the lock file.
  readonly #queues = new Map<string, Promise<void>>();

  /** Creates a store on `options.directory`; nothing touches the disk until the first call. */
  constructor(options: FileTokenStoreOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    if (typeof options.directory !== 'string' || options.directory.length === 0) {
      throw new TypeError('options.directory must be a non-empty string');
    }
    const fileMode = options.fileMode ?? 0o600;
    if (!Number.isInteger(fileMode) || fileMode < 0 || fileMode > 0o777) {
      throw new TypeError('options.fileMode must be a permission number such as 0o600');
    }
    this.directory = resolve(options.directory);
    this.#now = options.now ?? Date.now;
    this.#fileMode = fileMode;
  }

  /** {@inheritDoc TokenStore.get} */
  async get(memberId: string): Promise<PortalRecord | undefined> {
    const name = fileBase(memberId);
    return this.#guard(memberId, 'read', () => this.#read(memberId, name));
  }

  /** {@inheritDoc TokenStore.upsert} */
  async upsert(record: PortalRecordInput): Promise<PortalRecord> {
    const input = checkRecordInput(record);
    const name = fileBase(input.memberId);
    return this.#guard(input.memberId, 'write', () =>
      this.#exclusive(input.memberId, name, async (assertHeld) => {
        const { lastVersion } = await this.#readEntry(input.memberId, name);
        const stored: PortalRecord = { ...input, version: nextVersion(lastVersion, input.memberId) };
        await this.#write(name, { format: FORMAT, record: stored }, assertHeld);
        return { ...stored };
      }),
    );
  }

  /** {@inheritDoc TokenStore.update} */
  async update(memberId: string, expectedVersion: number, patch: PortalRecordPatch): Promise<ConditionalWriteResult> {
    const name = fileBase(memberId);
    checkExpectedVersion(expectedVersion);
    const changes = checkPatch(patch);
    return this.#guard(memberId, 'write', async (): Promise<ConditionalWriteResult> => {
      // A version mismatch seen without the lock is already a valid conflict (the record had moved on
      // at the moment of the read); skipping the lock then keeps the losers of a race off the lock file.
      const seen = await this.#read(memberId, name);
      if (seen?.version !== expectedVersion) return { ok: false, current: seen };
      return this.#exclusive(memberId, name, async (assertHeld): Promise<ConditionalWriteResult> => {
        const current = await this.#read(memberId, name);
        if (current?.version !== expectedVersion) return { ok: false, current };
        const next = applyPatch(current, changes);
        await this.#write(name, { format: FORMAT, record: next }, assertHeld);
        return { ok: true, record: { ...next } };
      });
    });
  }

  /** {@inheritDoc TokenStore.delete} */
  async delete(memberId: string): Promise<boolean> {
    const name = fileBase(memberId);
    // Under the write lock: a conditional write that read the record before the delete must not
    // rename it back into existence afterwards. The record is replaced by a tombstone holding only
    // its version, so a re-created record continues the count (see PortalRecord.version).
    return this.#guard(memberId, 'delete', () =>
      this.#exclusive(memberId, name, async (assertHeld) => {
        const { record } = await this.#readEntry(memberId, name);
        if (record === undefined) return false;
        await this.#write(name, { format: FORMAT, deleted: { memberId, version: record.version } }, assertHeld);
        return true;
      }),
    );
  }

  /** {@inheritDoc TokenStore.tryLock} */
  async tryLock(memberId: string, ttlMs: number): Promise<StoreLease | undefined> {
    const name = fileBase(memberId);
    checkTtlMs(ttlMs);
    return this.#guard(memberId, 'lock', async () => {
      await this.#prepare();
      const lock = new FileLock(join(this.directory, `${name}.lock`), this.#now, this.#fileMode);
      const held = await lock.tryAcquire(ttlMs);
      if (held === undefined) return undefined;
      let released = false;
      return {
        token: held.token,
        expiresAt: held.expiresAt,
        release: async () => {
          if (released) return;
          await this.#guard(memberId, 'unlock', () => lock.release(held.token));
          released = true;
        },
      };
    });
  }

  /** {@inheritDoc TokenStore.list} */
  async list(options?: PortalListOptions): Promise<PortalListPage> {
    const { after, limit } = checkListOptions(options);
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return { records: [], next: undefined };
      throw new StoreError('Could not list the token store directory', { cause: error });
    }
    const candidates: { memberId: string; name: string }[] = [];
    for (const fileName of names) {
      const name = RECORD_FILE.exec(fileName)?.[1];
      const memberId = name === undefined ? undefined : decodeName(name);
      if (name !== undefined && memberId !== undefined && (after === undefined || memberId > after)) {
        candidates.push({ memberId, name });
      }
    }
    candidates.sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
    const records: PortalRecord[] = [];
    let index = 0;
    for (; index < candidates.length && records.length < limit; index++) {
      const { memberId, name } = candidates[index] as { memberId: string; name: string };
      // Deleted since the readdir: simply not part of this page.
      const record = await this.#guard(memberId, 'read', () => this.#read(memberId, name));
      if (record !== undefined) records.push(record);
    }
    return { records, next: index < candidates.length ? records.at(-1)?.memberId : undefined };
  }

  /** Creates the directory once; a failure is retried by the next call rather than remembered. */
  async #prepare(): Promise<void> {
    this.#ready ??= mkdir(this.directory, { recursive: true, mode: 0o700 }).then(
      () => undefined,
      (error: unknown) => {
        this.#ready = undefined;
        throw error;
      },
    );
    return this.#ready;
  }

  /** Turns anything but our own errors and argument errors into a StoreError naming the operation. */
  async #guard<T>(memberId: string, operation: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      if (error instanceof PortalTokensError || error instanceof TypeError) throw error;
      throw new StoreError(`File token store failed to ${operation} portal ${memberId}`, { cause: error, memberId });
    }
  }

  async #read(memberId: string, name: string): Promise<PortalRecord | undefined> {
    return (await this.#readEntry(memberId, name)).record;
  }

  /** Reads a portal's file: its record, or nothing (no file, or a deleted portal's tombstone), and the last version. */
  async #readEntry(memberId: string, name: string): Promise<{ record: PortalRecord | undefined; lastVersion: number }> {
    let text: string;
    try {
      text = await readFile(join(this.directory, `${name}.json`), 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return { record: undefined, lastVersion: 0 };
      throw error;
    }
    const corrupt = (why: string): StoreError =>
      new StoreError(`Record file of portal ${memberId} is corrupt (${why})`, { memberId });
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      // The parser's message quotes the file's text, which holds tokens: keep it out of the error.
      throw corrupt('not valid JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || (parsed as { format?: unknown }).format !== FORMAT) {
      throw corrupt('unknown format');
    }
    const deleted = (parsed as { deleted?: unknown }).deleted;
    if (deleted !== undefined) {
      if (deleted === null || typeof deleted !== 'object') throw corrupt('bad tombstone');
      const { memberId: tombMember, version } = deleted as { memberId?: unknown; version?: unknown };
      if (tombMember !== memberId) throw corrupt('bad tombstone');
      if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
        throw corrupt('bad tombstone version');
      }
      return { record: undefined, lastVersion: version };
    }
    const result = readStoredRecord((parsed as { record?: unknown }).record);
    if ('badField' in result) throw corrupt(`bad field ${result.badField}`);
    if (result.record.memberId !== memberId) throw corrupt('memberId does not match the file name');
    return { record: result.record, lastVersion: result.record.version };
  }

  /** Runs `section` holding this portal's write lock, queued behind this process's other writers. */
  async #exclusive<T>(
    memberId: string,
    name: string,
    section: (assertHeld: () => Promise<void>) => Promise<T>,
  ): Promise<T> {
    const previous = this.#queues.get(name) ?? Promise.resolve();
    let done = (): void => undefined;
    const mine = new Promise<void>((resolveTurn) => (done = resolveTurn));
    const tail = previous.then(() => mine);
    this.#queues.set(name, tail);
    try {
      await previous;
      await this.#prepare();
      const lock = new FileLock(join(this.directory, `${name}.wlock`), this.#now, this.#fileMode);
      const lease = await this.#acquireWriteLock(lock, memberId);
      try {
        return await section(async () => {
          // Narrows the window of a stall past the lease to the gap between this check and the rename.
          if (!(await lock.holds(lease.token))) {
            throw new StoreError(`Write lock of portal ${memberId} lapsed before the write; nothing was written`, {
              memberId,
            });
          }
        });
      } finally {
        // A failed release is not the caller's failure: the write is done and the lease lapses on its own.
        await lock.release(lease.token).catch(() => undefined);
      }
    } finally {
      done();
      if (this.#queues.get(name) === tail) this.#queues.delete(name);
    }
  }

  async #acquireWriteLock(lock: FileLock, memberId: string): Promise<{ token: string }> {
    const deadline = Date.now() + WRITE_LOCK_WAIT_MS;
    for (let pause = 1; ; pause = Math.min(pause * 2, 20)) {
      const lease = await lock.tryAcquire(WRITE_LEASE_MS);
      if (lease !== undefined) return lease;
      if (Date.now() > deadline) {
        throw new StoreError(`Timed out waiting for the write lock of portal ${memberId}`, { memberId });
      }
      // Jitter keeps several processes from retrying in lockstep.
      await sleep(pause + Math.random() * pause);
    }
  }

  async #write(name: string, content: FileContent, assertHeld: () => Promise<void>): Promise<void> {
    const target = join(this.directory, `${name}.json`);
    const temp = join(this.directory, `.${name}.${randomBytes(8).toString('hex')}.tmp`);
    try {
      const handle = await open(temp, 'wx', this.#fileMode);
      try {
        // Explicit, because the umask may have taken bits off the mode given to open.
        await handle.chmod(this.#fileMode);
        await handle.writeFile(`${JSON.stringify(content)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await assertHeld();
      await rename(temp, target);
    } catch (error) {
      await unlinkIfPresent(temp).catch(() => undefined);
      throw error;
    }
    await this.#syncDirectory();
  }

  /** Makes a rename or unlink durable; platforms that cannot fsync a directory are skipped. */
  async #syncDirectory(): Promise<void> {
    let handle;
    try {
      handle = await open(this.directory, 'r');
      await handle.sync();
    } catch (error) {
      const code = errorCode(error);
      if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EBADF') throw error;
    } finally {
      await handle?.close();
    }
  }
}

/** The file-name stem of a portal: the hex of its UTF-8 bytes, case-proof and free of path syntax. */
function fileBase(memberId: string): string {
  checkMemberId(memberId);
  const bytes = Buffer.from(memberId, 'utf8');
  if (bytes.length > MAX_MEMBER_ID_BYTES) {
    throw new TypeError(`memberId must be at most ${MAX_MEMBER_ID_BYTES} UTF-8 bytes for FileTokenStore`);
  }
  return bytes.toString('hex');
}

function decodeName(name: string): string | undefined {
  try {
    const memberId = utf8.decode(Buffer.from(name, 'hex'));
    // Only names this store could have written: a stray file must not be read as another portal's.
    return memberId.length > 0 && Buffer.from(memberId, 'utf8').toString('hex') === name ? memberId : undefined;
  } catch {
    return undefined;
  }
}
