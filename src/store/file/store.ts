// FileTokenStore: the embedded default store. Each chain is a directory of version files in one
// directory, every write a new file linked exclusively (the fence: see src/store/file/write.ts), with per-chain
// lock files shared across processes. The parts: src/store/file/names.ts (layout, pure), src/store/file/read.ts (the
// read path), src/store/file/directory.ts (ready, sweeps, listings), src/store/file/write.ts (the write path and the
// fence), src/store/file/budget.ts (request budgets); this file wires them into the TokenStore contract.

import { join, resolve } from 'node:path';
import { systemClock, type Clock } from '../../clock.js';
import { PortalTokensError, StoreError } from '../../errors.js';
import { FileBudgets } from './budget.js';
import { StoreDirectory } from './directory.js';
import { FileLock } from './lock.js';
import { allChainsIn, describe, FORMAT, isTempOf, isTransient, locate, portalsIn, userChainsIn, type Located } from './names.js';
import { readChain } from './read.js';
import { ChainWriter, FILE_WRITE_HOOK, type WriteStage } from './write.js';
import {
  applyPatch,
  checkExpectedVersion,
  checkListOptions,
  checkPatch,
  checkRecordInput,
  checkTtlMs,
  nextVersion,
} from '../record-checks.js';
import { afterCursor, chainCursor, readChainCursor } from '../record-checks.js';
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
  LockedRead,
  TokenStore,
} from '../token-store.js';

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
 * The embedded default {@link TokenStore}: one directory per chain in a directory of your choice.
 *
 * A portal's own chain is a subdirectory named after the hex encoding of its `memberId` (so no
 * `memberId` can ever name a path outside the directory); a user chain `'user:<id>'` is
 * `<hex>.user-<id>` beside it (hex has no dot, so no other portal's name can collide with it). A
 * chain's directory holds its version files, `<generation>.json` (mode `0600`): every write creates
 * the next generation as a new file, written to a temp file, fsynced and then linked into place with
 * `link()`, which fails when the name exists. That link is the fence between writers: a writer
 * stalled past its lease (a GC pause, a stopped process) finds its generation taken, or its temp
 * file removed by the writer that took over its lease, or sees a newer generation right after
 * linking and takes its file back; its write is refused as a conflict instead of landing over a
 * newer one. Readers list the chain's directory and read the newest generation; the
 * write that links a generation removes the older ones. A crash leaves the old version or the new
 * one, never a mix. A write touches only its chain's files, so it costs the same with ten portals or
 * a hundred thousand; {@link FileTokenStore.listChains}, {@link FileTokenStore.deletePortal} and
 * {@link FileTokenStore.list} read the directory listing.
 *
 * Conditional writes, upserts and deletes run under an internal per-chain write lease (a lock file,
 * separate from the public {@link FileTokenStore.tryLock} lock), which makes writers take turns
 * across every process that opens the same directory on the same machine. Network file systems are
 * not supported: their `link()` and `rename()` guarantees vary.
 *
 * A directory written by an earlier release (format 1: one `<hex>.json` file per chain) is read as it is,
 * and each chain moves to its directory at its first write; stop the processes of the older release
 * before starting this one on the same directory.
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
  readonly #fileMode: number;
  readonly #root: StoreDirectory;
  readonly #writer: ChainWriter;
  readonly #budgets: FileBudgets;

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
    this.#now = options.now ?? (() => clock.now());
    this.#fileMode = fileMode;
    this.#root = new StoreDirectory(this.directory, fileMode);
    const hook = (options as { [FILE_WRITE_HOOK]?: (stage: WriteStage) => Promise<void> })[FILE_WRITE_HOOK];
    this.#writer = new ChainWriter(this.#root, this.#now, clock, fileMode, hook);
    this.#budgets = new FileBudgets(this.#root, this.#now, clock, fileMode);
  }

  /**
   * Creates the directory (mode `0700`) if missing, checks that it is a directory this process can
   * write, and removes temp files left by writers that died (and format-1 files that a migration
   * killed after linking the chain's first version left behind). Idempotent; the first write does the
   * same, so calling it is optional, but it turns a misconfigured path into an error at startup.
   * @throws StoreError saying what to fix when the path is a file or the directory is not writable.
   */
  async ready(): Promise<void> {
    await this.#root.prepare();
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
      this.#writer.apply(
        at,
        ({ lastVersion }) => {
          const stored: PortalRecord = { ...input, version: nextVersion(lastVersion, input.memberId) };
          return { content: { format: FORMAT, record: stored }, result: { ...stored } };
        },
        () => Promise.resolve(undefined),
      ),
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
      return this.#writer.apply<ConditionalWriteResult>(
        at,
        ({ record: current }) => {
          if (current?.version !== expectedVersion) return { result: { ok: false, current } };
          const next = applyPatch(current, changes);
          return { content: { format: FORMAT, record: next }, result: { ok: true, record: { ...next } } };
        },
        // Fenced: a newer version landed after our read, so this write lost, like any conflict. Unless
        // the record is still the one we read: then a writer that took over our lapsed lease only
        // removed our temp file and wrote nothing, and the write starts over under a new lease.
        async () => {
          const current = await this.#read(at);
          return current?.version === expectedVersion ? undefined : { ok: false, current };
        },
      );
    });
  }

  /** {@inheritDoc TokenStore.delete} */
  async delete(key: ChainKey): Promise<boolean> {
    const at = locate(key);
    return this.#guard(at, 'delete', async () => {
      if (!(await this.#root.exists())) return false;
      return this.#tombstone(at, []);
    });
  }

  /** {@inheritDoc TokenStore.deletePortal} */
  async deletePortal(memberId: string): Promise<number> {
    const portal = locate(memberId);
    return this.#guard(portal, 'delete', async () => {
      const names = await this.#root.listing();
      if (names === undefined) return 0;
      // The portal's own chain first: once it is gone the portal is unusable even if we stop half-way.
      let deleted = 0;
      for (const at of [portal, ...userChainsIn(names, memberId)]) {
        // Under the chain's write lock every temp file of the chain is a dead (or lapsed) writer's.
        if (await this.#tombstone(at, names.filter((name) => isTempOf(name, at.stem)))) deleted++;
      }
      return deleted;
    });
  }

  /** {@inheritDoc TokenStore.tryLock} */
  async tryLock(key: ChainKey, ttlMs: number): Promise<StoreLease | undefined> {
    const at = locate(key);
    checkTtlMs(ttlMs);
    return this.#take(at, ttlMs);
  }

  /**
   * Takes the lock file, then reads the chain's file: the read starts after the lease is held, so
   * it sees every write made before (a writer renames its file into place before it releases).
   * Saves the caller one pass through the store, not a file system call. See
   * {@link TokenStore.tryLockAndGet}.
   */
  async tryLockAndGet(key: ChainKey, ttlMs: number): Promise<LockedRead> {
    const at = locate(key);
    checkTtlMs(ttlMs);
    const lease = await this.#take(at, ttlMs);
    try {
      return { lease, record: await this.#guard(at, 'read', () => this.#read(at)) };
    } catch (error) {
      // The caller never sees this lease: free it now rather than at its lapse.
      await lease?.release().catch(() => undefined);
      throw error;
    }
  }

  #take(at: Located, ttlMs: number): Promise<StoreLease | undefined> {
    return this.#guard(at, 'lock', async () => {
      await this.#root.prepare();
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
    return this.#budgets.acquire(key, spec);
  }

  /** {@inheritDoc TokenStore.list} */
  async list(options?: PortalListOptions): Promise<PortalListPage> {
    const { after, limit } = checkListOptions(options);
    const candidates = portalsIn((await this.#root.listing()) ?? [], after);
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

  /** {@inheritDoc TokenStore.listAll} */
  async listAll(options?: PortalListOptions): Promise<PortalListPage> {
    const { limit } = checkListOptions(options);
    const cursor = readChainCursor(options?.after);
    const candidates = allChainsIn((await this.#root.listing()) ?? []).filter((at) => afterCursor(at.memberId, at.chain, cursor));
    const records: PortalRecord[] = [];
    let index = 0;
    // Tombstones (deleted chains) take a slot in `candidates` but none in the page.
    while (records.length < limit && index < candidates.length) {
      const at = candidates[index++] as Located;
      const record = await this.#guard(at, 'read', () => this.#read(at));
      if (record !== undefined) records.push(record);
    }
    const last = candidates[index - 1];
    return { records, next: index < candidates.length && last !== undefined ? chainCursor(last) : undefined };
  }

  /** {@inheritDoc TokenStore.listChains} */
  async listChains(memberId: string): Promise<readonly PortalRecord[]> {
    locate(memberId);
    const records: PortalRecord[] = [];
    for (const at of userChainsIn((await this.#root.cachedListing()) ?? [], memberId)) {
      const record = await this.#guard(at, 'read', () => this.#read(at));
      if (record !== undefined) records.push(record);
    }
    return records;
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
    return (await readChain(this.directory, at)).record;
  }

  /**
   * Writes a tombstone holding only the chain's version over its record; `false` when there was no
   * record. The tombstone keeps the version, so a re-created record continues the count (see
   * PortalRecord.version). An unconditional delete that the fence refuses starts over on what is
   * stored then.
   */
  async #tombstone(at: Located, strays: readonly string[]): Promise<boolean> {
    return this.#writer.apply(
      at,
      ({ record }) => {
        if (record === undefined) return { result: false };
        const deleted =
          at.chain === 'portal'
            ? { memberId: at.memberId, version: record.version }
            : { memberId: at.memberId, chain: at.chain, version: record.version };
        return { content: { format: FORMAT, deleted }, result: true };
      },
      () => Promise.resolve(undefined),
      strays,
    );
  }
}
