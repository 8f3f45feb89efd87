// The file store's write path, where the fence is. Writers of a chain take turns under an internal
// lease (a lock file), but a lease only says who should write: a writer stalled past it (a GC pause,
// SIGSTOP, a swapped-out VM) still runs its write when it wakes. So the write itself decides:
//
//   every write creates the next generation of the chain as a new file, <stem>/<n+1>.json, by
//   link(2) of its fsynced temp file: atomic and exclusive. A writer whose read (generation n) went
//   stale either finds <n+1> taken (EEXIST), or finds its temp file removed (the next lease holder
//   removes a lapsed holder's temp file), or, when <n+1> was already pruned, links it and then sees a
//   higher generation in the listing that follows every link, removes its file and reports the
//   write refused. Readers take the highest generation, so a stale file is never read, even while it
//   exists. The highest generation never goes away, which is what makes the listing check sound.
//
// Generations, not record versions, name the files: a tombstone keeps the version of the record it
// deletes, so two writes in a row can hold the same version, and only a number that every write
// raises makes "the next file is already there" mean "someone wrote after my read". Temp files live
// beside the chain directories, not in them (link works across directories of one file system): one
// listing of the store's directory then finds every temp file for the sweeps, and a writer taking
// over a lapsed lease finds the lapsed writer's temp file by name.
//
// The price: a read lists the chain's directory before reading its newest file (two calls instead
// of one), and a chain's first write creates its directory (one more directory fsync, run at the same
// time as the other). The lease stays: it is what makes writers take turns instead of racing to
// link, and what lock users and the crash cleanup rely on.

import { link, mkdir, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../../clock.js';
import { StoreError } from '../../errors.js';
import { syncDirectory, type StoreDirectory } from './directory.js';
import { errorCode, FileLock, unlinkIfPresent } from './lock.js';
import { describe, generationOf, newestGeneration, WRITE_LEASE_MS, WRITE_LOCK_WAIT_MS, type FileContent, type Located } from './names.js';
import { chainDirectory, legacyFile, readChain, type ChainState } from './read.js';

/** Where a write can be paused by {@link FILE_WRITE_HOOK}: its content decided, or its temp file written and fsynced. */
export type WriteStage = 'content-ready' | 'before-link';

/**
 * A test seam, not part of the package's API: a function under this key in `FileTokenStore`'s
 * options is awaited at each {@link WriteStage} of every write, holding the write lease. The
 * cross-process tests use it to stop a real writer (SIGSTOP) at an exact point of its write.
 */
export const FILE_WRITE_HOOK: unique symbol = Symbol('b24-portal-tokens.file-write-hook');

/** What a write section decided from the chain's state: the content to write, if any, and the answer. */
export interface WritePlan<T> {
  readonly content?: FileContent | undefined;
  readonly result: T;
}

/** How many leases a write that starts over when fenced (upsert, delete, see `apply`) takes before giving up. */
const FENCED_ATTEMPTS = 3;

/** Writes chains: the internal lease, the exclusive link of each version, pruning and the migration of old files. */
export class ChainWriter {
  readonly #directory: StoreDirectory;
  readonly #now: () => number;
  readonly #clock: Clock;
  readonly #fileMode: number;
  readonly #hook: (stage: WriteStage) => Promise<void>;
  // Serialises this process's writes per chain, so they queue in memory instead of spinning on the lock file.
  readonly #queues = new Map<string, Promise<void>>();

  constructor(directory: StoreDirectory, now: () => number, clock: Clock, fileMode: number, hook?: (stage: WriteStage) => Promise<void>) {
    this.#directory = directory;
    this.#now = now;
    this.#clock = clock;
    this.#fileMode = fileMode;
    this.#hook = hook ?? (() => Promise.resolve());
  }

  /**
   * Reads the chain under its write lease, lets `decide` plan the write and commits it. When the
   * fence refuses the write (a newer generation landed since the read, or our temp file was removed
   * by the writer that took over our lapsed lease), `fenced` gives the answer, or `undefined` to start
   * over under a new lease (unconditional writes; a conditional one whose record did not change).
   * @param strays temp files to remove once the lease is held (every temp file of the chain then is a dead writer's).
   */
  async apply<T>(
    at: Located,
    decide: (state: ChainState) => WritePlan<T>,
    fenced: () => Promise<T | undefined>,
    strays: readonly string[] = [],
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#exclusive(at, async (temp) => {
        await Promise.all(strays.map((name) => unlinkIfPresent(join(this.#directory.path, name))));
        const state = await readChain(this.#directory.path, at);
        const plan = decide(state);
        if (plan.content === undefined || (await this.#commit(at, state, plan.content, temp))) return { result: plan.result };
        return undefined;
      });
      if (outcome !== undefined) return outcome.result;
      const answer = await fenced();
      if (answer !== undefined) return answer;
      if (attempt >= FENCED_ATTEMPTS) {
        throw new StoreError(`Writes to ${describe(at)} kept being fenced by newer ones; nothing was written`, {
          memberId: at.memberId,
          transient: true,
        });
      }
    }
  }

  /** Runs `section` holding this chain's write lease, queued behind this process's other writers. */
  async #exclusive<T>(at: Located, section: (temp: string) => Promise<T>): Promise<T> {
    const previous = this.#queues.get(at.stem) ?? Promise.resolve();
    let done = (): void => undefined;
    const mine = new Promise<void>((resolveTurn) => (done = resolveTurn));
    const tail = previous.then(() => mine);
    this.#queues.set(at.stem, tail);
    try {
      await previous;
      await this.#directory.prepare();
      const lock = new FileLock(join(this.#directory.path, `${at.stem}.wlock`), this.#now, this.#fileMode);
      const lease = await this.#acquire(lock, at);
      try {
        // A writer killed (or stalled) inside its write left its lease and, maybe, its temp file
        // (named after the lease): taking over the lease is how we know, and the temp file is
        // removed here. A stalled writer that wakes then finds nothing to link.
        if (lease.replaced !== undefined) await unlinkIfPresent(this.#tempPath(at, lease.replaced));
        return await section(this.#tempPath(at, lease.token));
      } finally {
        // A failed release is not the caller's failure: the write is done and the lease lapses on its own.
        await lock.release(lease.token).catch(() => undefined);
      }
    } finally {
      done();
      if (this.#queues.get(at.stem) === tail) this.#queues.delete(at.stem);
    }
  }

  async #acquire(lock: FileLock, at: Located): Promise<{ token: string; replaced: string | undefined }> {
    const deadline = this.#clock.now() + WRITE_LOCK_WAIT_MS;
    for (let pause = 1; ; pause = Math.min(pause * 2, 20)) {
      const lease = await lock.tryAcquire(WRITE_LEASE_MS);
      if (lease !== undefined) return lease;
      if (this.#clock.now() > deadline) {
        throw new StoreError(`Timed out waiting for the write lock of ${describe(at)}`, { memberId: at.memberId, transient: true });
      }
      // Jitter keeps several processes from retrying in lockstep.
      await this.#clock.sleep(pause + Math.random() * pause);
    }
  }

  /** The temp file a write under the lease `token` goes through: `.<stem>.<token>.tmp`, beside the chain directories. */
  #tempPath(at: Located, token: string): string {
    return join(this.#directory.path, `.${at.stem}.${token}.tmp`);
  }

  /**
   * Writes `content` as generation `state.generation + 1` of the chain.
   * @returns `true` when it is the chain's newest version now; `false` when the fence refused it
   *   (nothing of it is left on disk).
   */
  async #commit(at: Located, state: ChainState, content: FileContent, temp: string): Promise<boolean> {
    const root = this.#directory.path;
    const directory = chainDirectory(root, at);
    let created = false;
    if (state.generation === 0) created = await mkdir(directory, { mode: 0o700 }).then(() => true, ignore('EEXIST', false));
    await this.#hook('content-ready');
    const generation = state.generation + 1;
    const target = join(directory, `${generation}.json`);
    let linked: boolean;
    try {
      // The name is unique to our lease; 'wx' also refuses to follow anything planted under it.
      const handle = await open(temp, 'wx', this.#fileMode);
      try {
        // Explicit, because the umask may have taken bits off the mode given to open.
        await handle.chmod(this.#fileMode);
        await handle.writeFile(`${JSON.stringify(content)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await this.#hook('before-link');
      // The fence. EEXIST: someone wrote generation n+1 after our read. ENOENT: our temp file was
      // removed by the writer who took over our lapsed lease.
      linked = await link(temp, target).then(() => true, ignore(['EEXIST', 'ENOENT'], false));
    } finally {
      await unlinkIfPresent(temp);
    }
    if (created) this.#directory.changed();
    if (!linked) return false;
    const names = await readdir(directory);
    if (newestGeneration(names) > generation) {
      // Stale: generation n+1 had been written and pruned already. Never read (readers take the
      // newest), and removed now.
      await unlinkIfPresent(target);
      return false;
    }
    const older = names.filter((name) => (generationOf(name) ?? generation) < generation);
    await Promise.all(older.map((name) => unlinkIfPresent(join(directory, name))));
    // A new chain's directory entry must be durable too; both syncs at once share one journal commit.
    await Promise.all([syncDirectory(directory), created ? syncDirectory(root) : undefined]);
    // A chain read from an old record file is migrated now that its first version is durable; a
    // delete removes one that a migration killed half-way left behind, so no token stays on disk.
    if ((state.generation === 0 || 'deleted' in content) && (await unlinkIfPresent(legacyFile(root, at)))) await syncDirectory(root);
    return true;
  }
}

/** A rejection handler that turns the listed error codes into `value` and rethrows anything else. */
function ignore<T>(codes: string | readonly string[], value: T): (error: unknown) => T {
  return (error: unknown) => {
    const code = errorCode(error);
    if (code !== undefined && (typeof codes === 'string' ? code === codes : codes.includes(code))) return value;
    throw error;
  };
}

