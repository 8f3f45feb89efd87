// The file store's directory: created and checked once (ready), swept of what dead writers left,
// listed (with a cache for listChains), fsynced. Shared by the read, write, listing and budget parts.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreError } from '../../errors.js';
import { errorCode, unlinkIfPresent } from './lock.js';
import { isTransient, newestGeneration, PORTAL_ENTRY, STALE_TEMP_MS, TEMP_FILE, USER_CHAIN_ENTRY } from './names.js';
import { namesIn } from './read.js';

/** The store's directory and what every part of the store does with it as a whole. */
export class StoreDirectory {
  /** The absolute path. */
  readonly path: string;
  readonly #fileMode: number;
  #ready: Promise<void> | undefined;
  /** The last listing `cachedListing` read, with the directory's mtime then. */
  #names: { readonly mtimeMs: number; readonly names: readonly string[] } | undefined;

  constructor(path: string, fileMode: number) {
    this.path = path;
    this.#fileMode = fileMode;
  }

  /**
   * Creates the directory, checks it and sweeps what dead writers left, once; a failure is retried
   * by the next call rather than remembered.
   */
  async prepare(): Promise<void> {
    this.#ready ??= this.#open().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  async #open(): Promise<void> {
    const where = `Token store directory ${this.path}`;
    try {
      await mkdir(this.path, { recursive: true, mode: 0o700 });
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
    const info = await stat(this.path).catch((error: unknown) => {
      throw new StoreError(`${where} cannot be read (${errorCode(error) ?? 'error'})`, { cause: error });
    });
    if (!info.isDirectory()) {
      throw new StoreError(`${where} is not a directory (a file is in the way): remove the file or choose another directory`);
    }
    // Permission bits do not tell (root, ACLs, read-only mounts): only a real write does.
    const probe = join(this.path, `.probe.${randomBytes(8).toString('hex')}.tmp`);
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
    await this.#sweep();
  }

  /**
   * Removes temp files old enough to be a dead writer's (see STALE_TEMP_MS), and old record files
   * of chains whose migration (see ChainWriter) linked the first version but died before removing
   * the old file. Best effort.
   */
  async #sweep(): Promise<void> {
    const names = await readdir(this.path);
    const present = new Set(names);
    const cutoff = Date.now() - STALE_TEMP_MS;
    for (const name of names) {
      const path = join(this.path, name);
      try {
        if (TEMP_FILE.test(name)) {
          // mtime is file-system time, compared with the real clock on purpose (not the lease clock).
          if ((await stat(path)).mtimeMs < cutoff) await unlinkIfPresent(path);
        } else if (name.endsWith('.json') && (PORTAL_ENTRY.test(name) || USER_CHAIN_ENTRY.test(name))) {
          const chain = name.slice(0, -'.json'.length);
          if (present.has(chain) && newestGeneration((await namesIn(join(this.path, chain))) ?? []) > 0) await unlinkIfPresent(path);
        }
      } catch {
        // Gone already, or not ours to remove: the next sweep tries again.
      }
    }
  }

  /** Whether the directory exists (reads and deletes of a store never written must not create it). */
  async exists(): Promise<boolean> {
    try {
      await stat(this.path);
      return true;
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return false;
      throw error;
    }
  }

  /** The directory's names, or `undefined` when it does not exist yet. */
  async listing(): Promise<string[] | undefined> {
    try {
      return await readdir(this.path);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw new StoreError('Could not list the token store directory', { cause: error, transient: isTransient(error) });
    }
  }

  /**
   * The directory's names for `listChains`, read again only when the directory changed (its mtime
   * moved, or this process created a chain): walking every portal's chains would otherwise read the
   * whole directory once per portal. Chain directories are never removed (a delete leaves a
   * tombstone), so a listing can only be missing names, never hold stale ones.
   */
  async cachedListing(): Promise<readonly string[] | undefined> {
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(this.path)).mtimeMs;
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      return this.listing();
    }
    const cached = this.#names;
    if (cached !== undefined && cached.mtimeMs === mtimeMs) return cached.names;
    const names = await this.listing();
    if (names !== undefined) this.#names = { mtimeMs, names };
    return names;
  }

  /** Forgets the cached listing (this process added a name). */
  changed(): void {
    this.#names = undefined;
  }
}

/** Makes a link, rename or unlink in `directory` durable; platforms that cannot fsync a directory are skipped. */
export async function syncDirectory(directory: string): Promise<void> {
  let handle;
  try {
    handle = await open(directory, 'r');
    await handle.sync();
  } catch (error) {
    const code = errorCode(error);
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EBADF') throw error;
  } finally {
    await handle?.close();
  }
}
