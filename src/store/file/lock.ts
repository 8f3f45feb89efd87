// A small cross-process lease lock on one file, used by FileTokenStore for both its public per-portal
// lock and its internal write lock. Not exported from the package: it is a detail of the file store.
//
// Taking a free lock is one atomic `link()` of a fully written temp file onto the lock path: it fails
// with EEXIST if anyone holds it, and other processes never see a half-written lock. Taking over a
// lapsed lease and releasing one are check-then-unlink sequences, so both run under a guard file
// created with O_EXCL; that way two processes that both saw the same lapsed lease cannot both remove
// it (the second one re-reads under the guard, sees the first one's new lease, and loses).
//
// The remaining narrow race: a guard older than GUARD_STALE_MS is presumed left by a crashed process
// and removed, and removing it is itself check-then-unlink. So a holder that stalls for seconds inside
// its few-millisecond guarded section, or two processes clearing the same crashed guard at the same
// instant, can end with two guard holders, and then two takers of one lapsed lease. That needs a crash
// or multi-second stall inside the guard, and the lock is advisory anyway: the store's writes are
// fenced by the exclusive link of each new version (see src/store/file/write.ts), never by the lease alone.

import { randomBytes, randomUUID } from 'node:crypto';
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreError } from '../../errors.js';

/** A guard older than this (by file mtime and the real clock) belongs to a crashed process. */
const GUARD_STALE_MS = 2_000;
/** How long to wait for a busy guard; longer than GUARD_STALE_MS so a crashed holder's guard is always cleared. */
const GUARD_WAIT_MS = 5_000;

/** A lease as written into the lock file. */
export interface FileLease {
  readonly token: string;
  readonly expiresAt: number;
}

/** A lease just taken, with the token of the lapsed lease it replaced (when it took one over). */
export interface AcquiredLease extends FileLease {
  /** The token of the lapsed lease this one took over, or `undefined` (a free lock, or an unreadable one). */
  readonly replaced: string | undefined;
}

type LockState =
  | { readonly kind: 'missing' }
  | { readonly kind: 'present'; readonly raw: string; readonly lease: FileLease | undefined };

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}

async function unlinkIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
  }
}

function parseLease(raw: string): FileLease | undefined {
  try {
    const value: unknown = JSON.parse(raw);
    if (typeof value !== 'object' || value === null) return undefined;
    const { token, expiresAt } = value as Record<string, unknown>;
    if (typeof token !== 'string' || typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) return undefined;
    return { token, expiresAt };
  } catch {
    return undefined;
  }
}

/** One lock file with lease semantics; see the file header for the protocol. */
export class FileLock {
  readonly #path: string;
  readonly #guardPath: string;
  readonly #now: () => number;
  readonly #fileMode: number;

  constructor(path: string, now: () => number, fileMode: number) {
    this.#path = path;
    this.#guardPath = `${path}.guard`;
    this.#now = now;
    this.#fileMode = fileMode;
  }

  /**
   * Tries once (apart from brief waits on the guard) to take the lock for `ttlMs`.
   * @returns the lease, or `undefined` when a live lease of someone else holds it.
   */
  async tryAcquire(ttlMs: number): Promise<AcquiredLease | undefined> {
    // A few rounds only cover a lock that vanished between our failed link and our read.
    for (let round = 0; round < 3; round++) {
      const lease = await this.#link(ttlMs);
      if (lease !== undefined) return { ...lease, replaced: undefined };
      const seen = await this.#read();
      if (seen.kind === 'missing') continue;
      if (this.#isLive(seen.lease)) return undefined;
      const outcome = await this.#withGuard(async (): Promise<AcquiredLease | 'held' | 'retry'> => {
        const again = await this.#read();
        if (again.kind === 'missing') return 'retry';
        // Someone else already took over (or released and re-took) since we looked: judge that lease.
        if (again.raw !== seen.raw) return this.#isLive(again.lease) ? 'held' : 'retry';
        await unlinkIfPresent(this.#path);
        // A fresh acquirer may link between our unlink and link; then it holds the lock and we lose.
        const taken = await this.#link(ttlMs);
        return taken === undefined ? 'held' : { ...taken, replaced: again.lease?.token };
      });
      if (outcome === 'held') return undefined;
      if (outcome !== 'retry') return outcome;
    }
    return undefined;
  }

  /** Removes the lock if `token` still holds it; a no-op otherwise. */
  async release(token: string): Promise<void> {
    await this.#withGuard(async () => {
      const seen = await this.#read();
      if (seen.kind === 'present' && seen.lease?.token === token) await unlinkIfPresent(this.#path);
    });
  }

  /**
   * Extends the lease of `token` to `ttlMs` from now if it still holds a live one. The new lease
   * replaces the file in one rename, so the lock path never stops existing and no fresh acquirer
   * can link in between; takeovers and releases run under the guard, as this does.
   * @returns the new expiry, or `undefined` when `token` no longer holds the lock.
   */
  async renew(token: string, ttlMs: number): Promise<number | undefined> {
    return this.#withGuard(async () => {
      const seen = await this.#read();
      if (seen.kind !== 'present' || seen.lease?.token !== token || !this.#isLive(seen.lease)) return undefined;
      const lease: FileLease = { token, expiresAt: this.#now() + ttlMs };
      const temp = this.#tempPath();
      try {
        const handle = await open(temp, 'wx', this.#fileMode);
        try {
          await handle.writeFile(JSON.stringify(lease));
        } finally {
          await handle.close();
        }
        await rename(temp, this.#path);
      } finally {
        await unlinkIfPresent(temp);
      }
      return lease.expiresAt;
    });
  }

  /** Whether `token` still holds a live lease, by this lock's clock. */
  async holds(token: string): Promise<boolean> {
    const seen = await this.#read();
    return seen.kind === 'present' && seen.lease?.token === token && this.#isLive(seen.lease);
  }

  #isLive(lease: FileLease | undefined): boolean {
    // An unreadable lock file cannot say when it lapses; treating it as lapsed is what keeps a
    // damaged file from blocking the portal forever.
    return lease !== undefined && lease.expiresAt > this.#now();
  }

  async #read(): Promise<LockState> {
    try {
      const raw = await readFile(this.#path, 'utf8');
      return { kind: 'present', raw, lease: parseLease(raw) };
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return { kind: 'missing' };
      throw error;
    }
  }

  /** Writes a complete lease to a temp file and links it onto the lock path; `undefined` on EEXIST. */
  async #link(ttlMs: number): Promise<FileLease | undefined> {
    const lease: FileLease = { token: randomUUID(), expiresAt: this.#now() + ttlMs };
    const temp = this.#tempPath();
    const handle = await open(temp, 'wx', this.#fileMode);
    try {
      try {
        await handle.writeFile(JSON.stringify(lease));
      } finally {
        await handle.close();
      }
      await link(temp, this.#path);
      return lease;
    } catch (error) {
      if (errorCode(error) === 'EEXIST') return undefined;
      throw error;
    } finally {
      await unlinkIfPresent(temp);
    }
  }

  #tempPath(): string {
    return join(dirname(this.#path), `.${basename(this.#path)}.${randomBytes(8).toString('hex')}.tmp`);
  }

  async #withGuard<T>(section: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + GUARD_WAIT_MS;
    for (let pause = 1; ; pause = Math.min(pause * 2, 16)) {
      try {
        const handle = await open(this.#guardPath, 'wx', this.#fileMode);
        await handle.close();
        break;
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') throw error;
      }
      const guard = await stat(this.#guardPath).catch((error: unknown) => {
        if (errorCode(error) === 'ENOENT') return undefined;
        throw error;
      });
      // Guards are held for milliseconds; an old one was left by a process that died inside.
      if (guard !== undefined && Date.now() - guard.mtimeMs > GUARD_STALE_MS) {
        await unlinkIfPresent(this.#guardPath);
        continue;
      }
      if (Date.now() > deadline) {
        throw new StoreError(`Timed out waiting for the guard of lock file ${basename(this.#path)}`);
      }
      await sleep(pause);
    }
    try {
      return await section();
    } finally {
      await unlinkIfPresent(this.#guardPath);
    }
  }
}

export { errorCode, unlinkIfPresent };
