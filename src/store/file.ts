// FileTokenStore: the embedded default store. One JSON file per chain in one directory, written
// atomically (temp file, fsync, rename, fsync directory), with per-chain lock files shared across processes.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { systemClock, type Clock } from '../clock.js';
import { PortalTokensError, StoreError } from '../errors.js';
import { budgetStep, checkBudgetKey, gcra } from './budget-math.js';
import { errorCode, FileLock, unlinkIfPresent } from './file-lock.js';
import {
  byCodeUnits,
  decodeName,
  describe,
  FORMAT,
  isTempOf,
  isTransient,
  locate,
  RECORD_FILE,
  STALE_TEMP_MS,
  TEMP_FILE,
  USER_CHAIN_FILE,
  WRITE_LEASE_MS,
  WRITE_LOCK_WAIT_MS,
  type FileContent,
  type Located,
  type WriteTurn,
} from './file-names.js';
import {
  applyPatch,
  checkExpectedVersion,
  checkListOptions,
  checkPatch,
  checkRecordInput,
  checkTtlMs,
  isChainId,
  nextVersion,
  readStoredRecord,
} from './record-checks.js';
import type {
  BudgetGrant,
  BudgetSpec,
  ChainKey,
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
   * directory must use the same clock; inject one only in tests. Overrides `clock.now` for leases.
   * @defaultValue `clock.now`
   */
  readonly now?: (() => number) | undefined;
  /**
   * The clock the store reads lease times from (unless `now` is given) and waits on while another
   * writer holds a chain's write lock. Inject a `ManualClock` in tests to drive those waits.
   * @defaultValue the system clock
   */
  readonly clock?: Clock | undefined;
  /**
   * The permission bits of record and lock files. The files hold live tokens: keep them private.
   * @defaultValue `0o600`
   */
  readonly fileMode?: number | undefined;
}

/**
 * The embedded default {@link TokenStore}: one file per chain in a directory of your choice.
 *
 * A portal's own chain is a JSON file named after the hex encoding of its `memberId` (so no
 * `memberId` can ever name a path outside the directory); a user chain `'user:<id>'` is
 * `<hex>.user-<id>.json` beside it (hex has no dot, so no other portal's name can collide with it).
 * Files have mode `0600`. Every write goes to a temp file in the same directory, is fsynced, renamed
 * over the record and the directory fsynced: a crash leaves the old record or the new one, never a
 * mix. A write touches only its chain's files, so it costs the same with ten portals or a hundred
 * thousand; {@link FileTokenStore.listChains}, {@link FileTokenStore.deletePortal} and
 * {@link FileTokenStore.list} read the directory listing.
 *
 * Conditional writes, upserts and deletes run under an internal per-chain write lock (a lock file,
 * separate from the public {@link FileTokenStore.tryLock} lock), which makes them atomic across every
 * process that opens the same directory on the same machine. Network file systems are not
 * supported: their `link()` and `rename()` guarantees vary.
 *
 * A writer killed mid-write leaves its temp file (with tokens in it) behind. The chain's next write
 * removes it when it takes over the dead writer's write lock, {@link FileTokenStore.deletePortal}
 * removes every temp file of the portal, and {@link FileTokenStore.ready} (or the first write of
 * the process) removes every temp file older than a minute.
 *
 * `memberId`s longer than 100 UTF-8 bytes are rejected with a `TypeError` (real ones are 32 characters).
 *
 * @example
 * ```ts
 * const store = new FileTokenStore({ directory: '/var/lib/my-app/portals' });
 * await store.ready(); // fails fast if the directory cannot be used
 * const pool = new PortalClientPool({ store, clientId, clientSecret });
 * ```
 */
export class FileTokenStore implements TokenStore {
  /** Locks and listing work, and are shared by every process that opens the same directory. */
  readonly capabilities: StoreCapabilities = { lock: true, crossProcess: true, list: true, changes: false, budget: true };
  /** The absolute path of the directory holding the records. */
  readonly directory: string;

  readonly #now: () => number;
  readonly #clock: Clock;
  readonly #fileMode: number;
  #ready: Promise<void> | undefined;
  /** The last directory listing `listChains` read, with the directory's mtime then. */
  #names: { readonly mtimeMs: number; readonly names: readonly string[] } | undefined;
  // Serialises this process's writes per chain, so they queue in memory instead of spinning on the lock file.
  readonly #queues = new Map<string, Promise<void>>();
  // The same for budget steps, per budget key.
  readonly #budgetQueues = new Map<string, Promise<void>>();
  #budgetDir: Promise<string> | undefined;

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
    const clock = options.clock ?? systemClock;
    if (typeof clock.now !== 'function' || typeof clock.sleep !== 'function') {
      throw new TypeError('options.clock must have now() and sleep(ms)');
    }
    if (options.now !== undefined && typeof options.now !== 'function') throw new TypeError('options.now must be a function');
    this.directory = resolve(options.directory);
    this.#clock = clock;
    this.#now = options.now ?? (() => clock.now());
    this.#fileMode = fileMode;
  }

  /**
   * Creates the directory (mode `0700`) if missing, checks that it is a directory this process can
   * write, and removes temp files left by writers that died. Idempotent; the first write does the
   * same, so calling it is optional, but it turns a misconfigured path into an error at startup.
   * @throws StoreError saying what to fix when the path is a file or the directory is not writable.
   */
  async ready(): Promise<void> {
    await this.#prepare();
  }

  /** {@inheritDoc TokenStore.get} */
  async get(key: ChainKey): Promise<PortalRecord | undefined> {
    const at = locate(key);
    return this.#guard(at, 'read', () => this.#read(at));
  }

  /** {@inheritDoc TokenStore.upsert} */
  async upsert(record: PortalRecordInput): Promise<PortalRecord> {
    const input = checkRecordInput(record);
    const at = locate({ memberId: input.memberId, chain: input.chain });
    return this.#guard(at, 'write', () =>
      this.#exclusive(at, async (turn) => {
        const { lastVersion } = await this.#readEntry(at);
        const stored: PortalRecord = { ...input, version: nextVersion(lastVersion, input.memberId) };
        await this.#write(at, { format: FORMAT, record: stored }, turn);
        return { ...stored };
      }),
    );
  }

  /** {@inheritDoc TokenStore.update} */
  async update(key: ChainKey, expectedVersion: number, patch: PortalRecordPatch): Promise<ConditionalWriteResult> {
    const at = locate(key);
    checkExpectedVersion(expectedVersion);
    const changes = checkPatch(patch);
    return this.#guard(at, 'write', async (): Promise<ConditionalWriteResult> => {
      // A version mismatch seen without the lock is already a valid conflict (the record had moved on
      // at the moment of the read); skipping the lock then keeps the losers of a race off the lock file.
      const seen = await this.#read(at);
      if (seen?.version !== expectedVersion) return { ok: false, current: seen };
      return this.#exclusive(at, async (turn): Promise<ConditionalWriteResult> => {
        const current = await this.#read(at);
        if (current?.version !== expectedVersion) return { ok: false, current };
        const next = applyPatch(current, changes);
        await this.#write(at, { format: FORMAT, record: next }, turn);
        return { ok: true, record: { ...next } };
      });
    });
  }

  /** {@inheritDoc TokenStore.delete} */
  async delete(key: ChainKey): Promise<boolean> {
    const at = locate(key);
    return this.#guard(at, 'delete', async () => {
      if (!(await this.#exists())) return false;
      return this.#exclusive(at, (turn) => this.#tombstone(at, turn));
    });
  }

  /** {@inheritDoc TokenStore.deletePortal} */
  async deletePortal(memberId: string): Promise<number> {
    const portal = locate(memberId);
    return this.#guard(portal, 'delete', async () => {
      const names = await this.#listing();
      if (names === undefined) return 0;
      // The portal's own chain first: once it is gone the portal is unusable even if we stop half-way.
      const chains: Located[] = [portal];
      for (const name of names) {
        const match = USER_CHAIN_FILE.exec(name);
        const chain = `user:${match?.[2] ?? ''}`;
        if (match?.[1] === portal.stem && isChainId(chain)) chains.push(locate({ memberId, chain }));
      }
      chains.sort((a, b) => (a.chain === 'portal' ? -1 : b.chain === 'portal' ? 1 : byCodeUnits(a.chain, b.chain)));
      let deleted = 0;
      for (const at of chains) {
        // Under the chain's write lock every temp file of the chain is a dead (or lapsed) writer's.
        const strays = names.filter((name) => isTempOf(name, at.stem));
        const removed = await this.#exclusive(at, async (turn) => {
          await Promise.all(strays.map((name) => unlinkIfPresent(join(this.directory, name))));
          return this.#tombstone(at, turn);
        });
        if (removed) deleted++;
      }
      return deleted;
    });
  }

  /** {@inheritDoc TokenStore.tryLock} */
  async tryLock(key: ChainKey, ttlMs: number): Promise<StoreLease | undefined> {
    const at = locate(key);
    checkTtlMs(ttlMs);
    return this.#guard(at, 'lock', async () => {
      await this.#prepare();
      const lock = new FileLock(join(this.directory, `${at.stem}.lock`), this.#now, this.#fileMode);
      const held = await lock.tryAcquire(ttlMs);
      if (held === undefined) return undefined;
      let released = false;
      let expiresAt = held.expiresAt;
      return {
        token: held.token,
        get expiresAt(): number {
          return expiresAt;
        },
        release: async () => {
          if (released) return;
          await this.#guard(at, 'unlock', () => lock.release(held.token));
          released = true;
        },
        renew: async (ttl: number) => {
          checkTtlMs(ttl);
          if (released) return false;
          const renewed = await this.#guard(at, 'renew the lock of', () => lock.renew(held.token, ttl));
          if (renewed === undefined) return false;
          expiresAt = renewed;
          return true;
        },
      };
    });
  }

  /**
   * One GCRA step of `key`'s budget, shared by every process on this directory: a short critical
   * section under a lock file (`budgets/<sha256 of key>.lock`) that reads and rewrites one number
   * (`budgets/<sha256>.json`, renamed into place, not fsynced: a budget lost in a crash is only a
   * full bucket again). Time is this machine's clock. See {@link TokenStore.acquire}.
   */
  async acquire(key: string, spec: BudgetSpec): Promise<BudgetGrant> {
    checkBudgetKey(key);
    const step = budgetStep(spec);
    const stem = createHash('sha256').update(key, 'utf8').digest('hex');
    const previous = this.#budgetQueues.get(stem) ?? Promise.resolve();
    let done = (): void => undefined;
    const tail = previous.then(() => new Promise<void>((resolveTurn) => (done = resolveTurn)));
    this.#budgetQueues.set(stem, tail);
    try {
      await previous;
      const directory = await this.#budgets();
      const lock = new FileLock(join(directory, `${stem}.lock`), this.#now, this.#fileMode);
      const deadline = this.#clock.now() + WRITE_LOCK_WAIT_MS;
      let lease;
      for (let pause = 0.5; ; pause = Math.min(pause * 2, 10)) {
        lease = await lock.tryAcquire(WRITE_LEASE_MS);
        if (lease !== undefined) break;
        if (this.#clock.now() > deadline) throw new StoreError('Timed out waiting for a budget lock', { transient: true });
        await this.#clock.sleep(pause + Math.random() * pause);
      }
      try {
        const path = join(directory, `${stem}.json`);
        const stored = await readFile(path, 'utf8').then(
          (text) => Number(text),
          (error: unknown) => {
            if (errorCode(error) === 'ENOENT') return undefined;
            throw error;
          },
        );
        const now = this.#now();
        const { tat, grant } = gcra(stored !== undefined && Number.isFinite(stored) ? stored : undefined, now, step);
        if (tat !== stored) {
          const temp = join(directory, `.${stem}.${lease.token}.tmp`);
          await writeFile(temp, String(tat), { mode: this.#fileMode });
          await rename(temp, path);
        }
        return grant;
      } finally {
        await lock.release(lease.token).catch(() => undefined);
      }
    } catch (error) {
      if (error instanceof PortalTokensError || error instanceof TypeError) throw error;
      throw new StoreError('File token store failed to take a budget step', { cause: error, transient: isTransient(error) });
    } finally {
      done();
      if (this.#budgetQueues.get(stem) === tail) this.#budgetQueues.delete(stem);
    }
  }

  /** The budgets subdirectory, created once. */
  async #budgets(): Promise<string> {
    this.#budgetDir ??= (async () => {
      await this.#prepare();
      const directory = join(this.directory, 'budgets');
      await mkdir(directory, { recursive: true, mode: 0o700 });
      return directory;
    })().catch((error: unknown) => {
      this.#budgetDir = undefined;
      throw error;
    });
    return this.#budgetDir;
  }

  /** {@inheritDoc TokenStore.list} */
  async list(options?: PortalListOptions): Promise<PortalListPage> {
    const { after, limit } = checkListOptions(options);
    const names = await this.#listingOrFail();
    const candidates: Located[] = [];
    for (const fileName of names ?? []) {
      const hex = RECORD_FILE.exec(fileName)?.[1];
      const memberId = hex === undefined ? undefined : decodeName(hex);
      if (hex !== undefined && memberId !== undefined && (after === undefined || memberId > after)) {
        candidates.push({ memberId, chain: 'portal', stem: hex });
      }
    }
    candidates.sort((a, b) => byCodeUnits(a.memberId, b.memberId));
    const records: PortalRecord[] = [];
    let index = 0;
    // Tombstones (deleted portals) take a slot in `candidates` but none in the page.
    while (records.length < limit && index < candidates.length) {
      const at = candidates[index++] as Located;
      const record = await this.#guard(at, 'read', () => this.#read(at));
      if (record !== undefined) records.push(record);
    }
    return { records, next: index < candidates.length ? records.at(-1)?.memberId : undefined };
  }

  /** {@inheritDoc TokenStore.listChains} */
  async listChains(memberId: string): Promise<readonly PortalRecord[]> {
    const portal = locate(memberId);
    const names = await this.#cachedListing();
    const chains: Located[] = [];
    for (const name of names ?? []) {
      const match = USER_CHAIN_FILE.exec(name);
      const chain = `user:${match?.[2] ?? ''}`;
      if (match?.[1] === portal.stem && isChainId(chain)) chains.push(locate({ memberId, chain }));
    }
    chains.sort((a, b) => byCodeUnits(a.chain, b.chain));
    const records: PortalRecord[] = [];
    for (const at of chains) {
      const record = await this.#guard(at, 'read', () => this.#read(at));
      if (record !== undefined) records.push(record);
    }
    return records;
  }

  /**
   * Creates the directory, checks it and sweeps stale temp files, once; a failure is retried by the
   * next call rather than remembered.
   */
  async #prepare(): Promise<void> {
    this.#ready ??= this.#open().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  async #open(): Promise<void> {
    const where = `Token store directory ${this.directory}`;
    try {
      await mkdir(this.directory, { recursive: true, mode: 0o700 });
    } catch (error) {
      const code = errorCode(error);
      if (code === 'EEXIST' || code === 'ENOTDIR') {
        throw new StoreError(`${where} is not a directory (a file is in the way): remove the file or choose another directory`, {
          cause: error,
        });
      }
      throw new StoreError(`${where} cannot be created (${code ?? 'error'}): create it or fix the permissions of its parent`, {
        cause: error,
        transient: isTransient(error),
      });
    }
    const info = await stat(this.directory).catch((error: unknown) => {
      throw new StoreError(`${where} cannot be read (${errorCode(error) ?? 'error'})`, { cause: error });
    });
    if (!info.isDirectory()) {
      throw new StoreError(`${where} is not a directory (a file is in the way): remove the file or choose another directory`);
    }
    // Permission bits do not tell (root, ACLs, read-only mounts): only a real write does.
    const probe = join(this.directory, `.probe.${randomBytes(8).toString('hex')}.tmp`);
    try {
      const handle = await open(probe, 'wx', this.#fileMode);
      await handle.close();
    } catch (error) {
      throw new StoreError(
        `${where} is not writable by this process (${errorCode(error) ?? 'error'}): give its user write access to the directory`,
        { cause: error, transient: isTransient(error) },
      );
    } finally {
      await unlinkIfPresent(probe).catch(() => undefined);
    }
    await this.#sweepStaleTemps();
  }

  /** Removes temp files old enough to be a dead writer's (see STALE_TEMP_MS). Best effort. */
  async #sweepStaleTemps(): Promise<void> {
    const names = await readdir(this.directory);
    const cutoff = Date.now() - STALE_TEMP_MS;
    for (const name of names) {
      if (!TEMP_FILE.test(name)) continue;
      const path = join(this.directory, name);
      try {
        // mtime is file-system time, compared with the real clock on purpose (not the lease clock).
        if ((await stat(path)).mtimeMs < cutoff) await unlinkIfPresent(path);
      } catch {
        // Gone already, or not ours to remove: the next sweep tries again.
      }
    }
  }

  /** Whether the directory exists (reads and deletes of a store never written must not create it). */
  async #exists(): Promise<boolean> {
    try {
      await stat(this.directory);
      return true;
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return false;
      throw error;
    }
  }

  /**
   * The directory's file names for `listChains`, read again only when the directory changed (its
   * mtime moved, or this process wrote a file): walking every portal's chains would otherwise read
   * the whole directory once per portal. Chain files are never removed (a delete leaves a
   * tombstone), so a listing can only be missing names, never hold stale ones.
   */
  async #cachedListing(): Promise<readonly string[] | undefined> {
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(this.directory)).mtimeMs;
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      return this.#listingOrFail();
    }
    const cached = this.#names;
    if (cached !== undefined && cached.mtimeMs === mtimeMs) return cached.names;
    const names = await this.#listingOrFail();
    if (names !== undefined) this.#names = { mtimeMs, names };
    return names;
  }

  /** The directory's file names, or `undefined` when it does not exist yet. */
  async #listing(): Promise<string[] | undefined> {
    try {
      return await readdir(this.directory);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  async #listingOrFail(): Promise<string[] | undefined> {
    try {
      return await this.#listing();
    } catch (error) {
      throw new StoreError('Could not list the token store directory', { cause: error, transient: isTransient(error) });
    }
  }

  /** Turns anything but our own errors and argument errors into a StoreError naming the operation. */
  async #guard<T>(at: Located, operation: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      if (error instanceof PortalTokensError || error instanceof TypeError) throw error;
      throw new StoreError(`File token store failed to ${operation} ${describe(at)}`, {
        cause: error,
        memberId: at.memberId,
        transient: isTransient(error),
      });
    }
  }

  async #read(at: Located): Promise<PortalRecord | undefined> {
    return (await this.#readEntry(at)).record;
  }

  /** Reads a chain's file: its record, or nothing (no file, or a deleted chain's tombstone), and the last version. */
  async #readEntry(at: Located): Promise<{ record: PortalRecord | undefined; lastVersion: number }> {
    let text: string;
    try {
      text = await readFile(join(this.directory, `${at.stem}.json`), 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return { record: undefined, lastVersion: 0 };
      throw error;
    }
    const corrupt = (why: string): StoreError =>
      new StoreError(`Record file of ${describe(at)} is corrupt (${why})`, { memberId: at.memberId });
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
      const tomb = deleted as { memberId?: unknown; chain?: unknown; version?: unknown };
      // Tombstones of the portal's chain carry no chain (as before chains existed).
      if (tomb.memberId !== at.memberId || (tomb.chain ?? 'portal') !== at.chain) throw corrupt('bad tombstone');
      const version = tomb.version;
      if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
        throw corrupt('bad tombstone version');
      }
      return { record: undefined, lastVersion: version };
    }
    const result = readStoredRecord((parsed as { record?: unknown }).record);
    if ('badField' in result) throw corrupt(`bad field ${result.badField}`);
    if (result.record.memberId !== at.memberId) throw corrupt('memberId does not match the file name');
    if (result.record.chain !== at.chain) throw corrupt('chain does not match the file name');
    return { record: result.record, lastVersion: result.record.version };
  }

  /** Replaces a chain's record by a tombstone holding only its version; `false` when there was no record. */
  async #tombstone(at: Located, turn: WriteTurn): Promise<boolean> {
    // Under the write lock: a conditional write that read the record before the delete must not
    // rename it back into existence afterwards. The tombstone keeps the version, so a re-created
    // record continues the count (see PortalRecord.version).
    const { record } = await this.#readEntry(at);
    if (record === undefined) return false;
    const deleted =
      at.chain === 'portal'
        ? { memberId: at.memberId, version: record.version }
        : { memberId: at.memberId, chain: at.chain, version: record.version };
    await this.#write(at, { format: FORMAT, deleted }, turn);
    return true;
  }

  /** Runs `section` holding this chain's write lock, queued behind this process's other writers. */
  async #exclusive<T>(at: Located, section: (turn: WriteTurn) => Promise<T>): Promise<T> {
    const previous = this.#queues.get(at.stem) ?? Promise.resolve();
    let done = (): void => undefined;
    const mine = new Promise<void>((resolveTurn) => (done = resolveTurn));
    const tail = previous.then(() => mine);
    this.#queues.set(at.stem, tail);
    try {
      await previous;
      await this.#prepare();
      const lock = new FileLock(join(this.directory, `${at.stem}.wlock`), this.#now, this.#fileMode);
      const lease = await this.#acquireWriteLock(lock, at);
      try {
        // A writer killed inside its write left its lease and, maybe, its temp file (named after the
        // lease): taking over the lease is how we know, and the temp file is removed here.
        if (lease.replaced !== undefined) await unlinkIfPresent(this.#tempPath(at, lease.replaced));
        return await section({
          temp: this.#tempPath(at, lease.token),
          assertHeld: async () => {
            // Narrows the window of a stall past the lease to the gap between this check and the rename.
            if (!(await lock.holds(lease.token))) {
              throw new StoreError(`Write lock of ${describe(at)} lapsed before the write; nothing was written`, {
                memberId: at.memberId,
                transient: true,
              });
            }
          },
        });
      } finally {
        // A failed release is not the caller's failure: the write is done and the lease lapses on its own.
        await lock.release(lease.token).catch(() => undefined);
      }
    } finally {
      done();
      if (this.#queues.get(at.stem) === tail) this.#queues.delete(at.stem);
    }
  }

  async #acquireWriteLock(lock: FileLock, at: Located): Promise<{ token: string; replaced: string | undefined }> {
    const deadline = this.#clock.now() + WRITE_LOCK_WAIT_MS;
    for (let pause = 1; ; pause = Math.min(pause * 2, 20)) {
      const lease = await lock.tryAcquire(WRITE_LEASE_MS);
      if (lease !== undefined) return lease;
      if (this.#clock.now() > deadline) {
        throw new StoreError(`Timed out waiting for the write lock of ${describe(at)}`, {
          memberId: at.memberId,
          transient: true,
        });
      }
      // Jitter keeps several processes from retrying in lockstep.
      await this.#clock.sleep(pause + Math.random() * pause);
    }
  }

  /** The temp file a write under the lease `token` goes through: `.<stem>.<token>.tmp`. */
  #tempPath(at: Located, token: string): string {
    return join(this.directory, `.${at.stem}.${token}.tmp`);
  }

  async #write(at: Located, content: FileContent, turn: WriteTurn): Promise<void> {
    const target = join(this.directory, `${at.stem}.json`);
    try {
      // The name is unique to our lease; 'wx' also refuses to follow anything planted under it.
      const handle = await open(turn.temp, 'wx', this.#fileMode);
      try {
        // Explicit, because the umask may have taken bits off the mode given to open.
        await handle.chmod(this.#fileMode);
        await handle.writeFile(`${JSON.stringify(content)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await turn.assertHeld();
      await rename(turn.temp, target);
      this.#names = undefined;
    } catch (error) {
      await unlinkIfPresent(turn.temp).catch(() => undefined);
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
