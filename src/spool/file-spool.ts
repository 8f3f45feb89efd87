// FileInstallSpool: a local, durable, bounded queue of verified lifecycle events the token store
// could not take (an outage). One fsynced file per entry; drainers claim an entry by renaming it, so
// two processes draining one directory never apply the same entry twice.

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DecryptionError, SpoolFullError } from '../errors.js';
import { consoleLogger, describeError, type Logger } from '../logger.js';
import { observedLogger } from '../logger.js';
import { TokenCipher, type TokenEncryptionOptions } from '../store/encrypted/token-cipher.js';
import { checkEntry, CorruptEntryError, parseEntry, serializeEntry, type SpooledEntry, type SpoolEntry } from './entry.js';

/** The spool's encryption: the same keys as the `EncryptedTokenStore`'s. */
export interface SpoolEncryptionOptions extends TokenEncryptionOptions {
  /**
   * Whether an entry written before encryption was turned on (tokens in clear) is still replayed.
   * @defaultValue `true`
   */
  readonly allowPlaintext?: boolean | undefined;
}

/** Options of {@link FileInstallSpool}. */
export interface FileInstallSpoolOptions {
  /** The spool's directory, on a local disk. Created with mode `0700` if missing; entry files are `0600`. */
  readonly directory: string;
  /** At most this many entries (pending, being replayed, or set aside as corrupt). @defaultValue 1000 */
  readonly maxEntries?: number | undefined;
  /** At most this many bytes of entry files. @defaultValue 8 MiB */
  readonly maxBytes?: number | undefined;
  /**
   * Seal the tokens of every entry with AES-256-GCM, exactly as `EncryptedTokenStore` does (pass
   * the same keys). Entries written without encryption are still read (`allowPlaintext`).
   * @defaultValue none: tokens are stored in clear (in files only this user can read)
   */
  readonly encryption?: SpoolEncryptionOptions | undefined;
  /**
   * An entry claimed by a drainer that has not finished it after this long is taken back by the
   * next drain (its drainer is presumed dead). Keep it far above the time one `apply` takes.
   * @defaultValue 10 minutes
   */
  readonly claimTimeoutMs?: number | undefined;
  /** Receives one line per entry that could not be replayed (ids and codes, never a token). @defaultValue warnings and errors on the console */
  readonly logger?: Logger | undefined;
}

/** What `apply` tells {@link FileInstallSpool.drain}: stored, superseded (both remove the entry), or try again later. */
export type SpoolApplyOutcome = 'applied' | 'stale' | 'retry';

/** What one {@link FileInstallSpool.drain} did. */
export interface SpoolDrainResult {
  /** Entries `apply` stored, now removed. */
  readonly applied: number;
  /** Entries `apply` found superseded by a newer record, now removed. */
  readonly stale: number;
  /** Entries kept for a later drain (`apply` answered `retry`). */
  readonly retried: number;
  /** Entries kept because `apply` threw or they could not be decrypted, or set aside as corrupt. */
  readonly failed: number;
}

const ID = /^(\d{15}-\d{6}-[0-9a-f]{8})\.json$/;
const CLAIM = /^(\d{15}-\d{6}-[0-9a-f]{8})\.claim-(\d{15})-[0-9a-f]{8}$/;
const TEMP = /^\.tmp-[0-9a-f]{16}$/;
const CORRUPT = /^\d{15}-\d{6}-[0-9a-f]{8}\.corrupt$/;
const TEMP_MAX_AGE_MS = 60_000;
const pad = (n: number, width: number): string => String(n).padStart(width, '0');

function positive(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new TypeError(`options.${name} must be a positive integer`);
  return value;
}

const isMissing = (error: unknown): boolean => (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

/**
 * A local durable queue for verified install and update events that met a store outage: Bitrix24
 * sends each lifecycle event once, so the handler spools it, answers 200, and replays it later.
 *
 * `put` writes one file per entry (a temp file, fsynced, renamed, the directory fsynced; mode
 * `0600` in a `0700` directory) and refuses with {@link SpoolFullError} past `maxEntries` or
 * `maxBytes`. `drain` replays entries oldest first: each is claimed by renaming its file to a
 * unique name (so of two drainers, in one process or several, exactly one gets it), handed to
 * `apply`, and removed when `apply` answers `applied` or `stale`, kept when it answers `retry` or
 * throws. A half-written temp file of a crashed writer is ignored and removed once it is a minute
 * old; an entry whose drainer died is taken back after `claimTimeoutMs` (so, only after a crash
 * mid-`apply`, an entry can reach `apply` a second time: `apply` compares `ts` with the stored
 * record and answers `stale`). Local disks only.
 *
 * @example
 * ```ts
 * const spool = new FileInstallSpool({ directory: './spool', encryption: { keys, writeKeyId } });
 * await spool.put({ memberId, ts: event.ts, kind: 'install', record });          // during an outage
 * await spool.drain(async (entry) => (await storeIfNewer(entry)) ? 'applied' : 'stale'); // later
 * ```
 */
export class FileInstallSpool {
  /** The spool's directory, resolved. */
  readonly directory: string;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #claimTimeoutMs: number;
  readonly #cipher: TokenCipher | undefined;
  readonly #allowPlaintext: boolean;
  readonly #logger: Logger;
  #prepared: Promise<void> | undefined;
  #putQueue: Promise<void> = Promise.resolve();
  #lastMs = 0;
  #seq = 0;

  /** @throws TypeError on a bad option (a key's id is named, never the key). */
  constructor(options: FileInstallSpoolOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    if (typeof options.directory !== 'string' || options.directory.length === 0) throw new TypeError('options.directory must be a non-empty path');
    this.directory = resolve(options.directory);
    this.#maxEntries = positive(options.maxEntries, 'maxEntries', 1000);
    this.#maxBytes = positive(options.maxBytes, 'maxBytes', 8 * 1024 * 1024);
    this.#claimTimeoutMs = positive(options.claimTimeoutMs, 'claimTimeoutMs', 10 * 60_000);
    this.#cipher = options.encryption === undefined ? undefined : new TokenCipher(options.encryption, 'options.encryption');
    this.#allowPlaintext = options.encryption?.allowPlaintext ?? true;
    this.#logger = observedLogger(options.logger ?? consoleLogger);
  }

  /**
   * Keeps one entry durably (fsynced before it resolves).
   * @returns the entry's id.
   * @throws SpoolFullError when `maxEntries` or `maxBytes` would be exceeded (answer 503); a
   *   `TypeError` for an invalid entry; the file system's error when the disk fails.
   */
  async put(entry: SpoolEntry): Promise<string> {
    const checked = checkEntry(entry);
    // One put at a time in this process, so the bounds hold exactly here (across processes sharing
    // the directory they may be exceeded by the number of concurrent writers).
    const result = this.#putQueue.then(() => this.#put(checked));
    this.#putQueue = result.then(
      () => undefined,
      () => undefined,
    );
    return await result;
  }

  async #put(checked: SpoolEntry): Promise<string> {
    await this.#prepare();
    const spooledAt = Date.now();
    const bytes = serializeEntry(checked, spooledAt, this.#cipher);
    const usage = await this.#usage();
    if (usage.entries + 1 > this.#maxEntries) throw new SpoolFullError('entries', { memberId: checked.memberId });
    if (usage.bytes + bytes.length > this.#maxBytes) throw new SpoolFullError('bytes', { memberId: checked.memberId });
    const id = this.#nextId(spooledAt);
    const temp = join(this.directory, `.tmp-${randomBytes(8).toString('hex')}`);
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } catch (error) {
      await handle.close();
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await handle.close();
    await rename(temp, join(this.directory, `${id}.json`));
    await this.#syncDirectory();
    return id;
  }

  /**
   * Replays every pending entry, oldest first, through `apply`, one at a time. Entries another
   * drainer holds are skipped. Resolves when every entry present at the start was tried once.
   */
  async drain(apply: (entry: SpooledEntry) => Promise<SpoolApplyOutcome>): Promise<SpoolDrainResult> {
    if (typeof apply !== 'function') throw new TypeError('apply must be a function');
    await this.#prepare();
    const counts = { applied: 0, stale: 0, retried: 0, failed: 0 };
    const names = await this.#sweep();
    for (const name of names) {
      const id = (ID.exec(name) as RegExpExecArray)[1] as string;
      const pending = join(this.directory, name);
      const claimed = join(this.directory, `${id}.claim-${pad(Date.now(), 15)}-${randomBytes(4).toString('hex')}`);
      try {
        await rename(pending, claimed);
      } catch (error) {
        if (isMissing(error)) continue; // another drainer claimed it first
        throw error;
      }
      const outcome = await this.#replay(id, claimed, apply);
      if (outcome === 'applied' || outcome === 'stale') {
        await unlink(claimed);
        counts[outcome]++;
      } else if (outcome === 'corrupt') {
        await rename(claimed, join(this.directory, `${id}.corrupt`));
        counts.failed++;
      } else {
        await rename(claimed, pending);
        counts[outcome === 'retry' ? 'retried' : 'failed']++;
      }
      await this.#syncDirectory();
    }
    return counts;
  }

  /** How many entries wait to be replayed (pending or being replayed now). */
  async size(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch (error) {
      if (isMissing(error)) return 0;
      throw error;
    }
    return names.filter((name) => ID.test(name) || CLAIM.test(name)).length;
  }

  async #replay(id: string, path: string, apply: (entry: SpooledEntry) => Promise<SpoolApplyOutcome>): Promise<SpoolApplyOutcome | 'failed' | 'corrupt'> {
    let entry: SpooledEntry;
    try {
      entry = parseEntry(id, await readFile(path), this.#cipher, this.#allowPlaintext);
    } catch (error) {
      if (error instanceof CorruptEntryError) {
        this.#logger.error({ id, reason: error.message }, 'a spooled entry is corrupt; it was set aside as <id>.corrupt');
        return 'corrupt';
      }
      if (error instanceof DecryptionError) {
        this.#logger.error({ id, memberId: error.memberId, keyId: error.keyId, reason: error.reason }, 'a spooled entry cannot be decrypted; it is kept');
        return 'failed';
      }
      throw error;
    }
    try {
      const outcome = await apply(entry);
      if (outcome === 'applied' || outcome === 'stale' || outcome === 'retry') return outcome;
      this.#logger.error({ id, memberId: entry.memberId }, "the spool's apply answered neither 'applied', 'stale' nor 'retry'; the entry is kept");
    } catch (error) {
      this.#logger.warn({ id, memberId: entry.memberId, err: describeError(error) }, 'replaying a spooled entry failed; it is kept');
    }
    return 'failed';
  }

  /** Pending entries oldest first, after taking back dead drainers' claims and removing dead writers' temp files. */
  async #sweep(): Promise<string[]> {
    const now = Date.now();
    for (const name of await readdir(this.directory)) {
      const claim = CLAIM.exec(name);
      if (claim !== null && now - Number(claim[2]) > this.#claimTimeoutMs) {
        await rename(join(this.directory, name), join(this.directory, `${claim[1]}.json`)).catch((error: unknown) => {
          if (!isMissing(error)) throw error;
        });
        this.#logger.warn({ id: claim[1] }, 'took back a spooled entry whose drainer did not finish it in claimTimeoutMs');
      } else if (TEMP.test(name)) {
        const info = await stat(join(this.directory, name)).catch(() => undefined);
        if (info !== undefined && now - info.mtimeMs > TEMP_MAX_AGE_MS) await unlink(join(this.directory, name)).catch(() => undefined);
      }
    }
    return (await readdir(this.directory)).filter((name) => ID.test(name)).sort();
  }

  async #usage(): Promise<{ entries: number; bytes: number }> {
    let entries = 0;
    let bytes = 0;
    for (const name of await readdir(this.directory)) {
      if (!ID.test(name) && !CLAIM.test(name) && !CORRUPT.test(name)) continue;
      const info = await stat(join(this.directory, name)).catch(() => undefined);
      if (info === undefined) continue; // drained meanwhile
      entries++;
      bytes += info.size;
    }
    return { entries, bytes };
  }

  /** Ids sort oldest first: put time in ms, then a counter for entries of one millisecond. */
  #nextId(now: number): string {
    if (now > this.#lastMs) {
      this.#lastMs = now;
      this.#seq = 0;
    } else this.#seq++;
    return `${pad(this.#lastMs, 15)}-${pad(this.#seq, 6)}-${randomBytes(4).toString('hex')}`;
  }

  #prepare(): Promise<void> {
    this.#prepared ??= (async () => {
      await mkdir(this.directory, { recursive: true, mode: 0o700 });
      const info = await stat(this.directory);
      if (!info.isDirectory()) throw new TypeError('options.directory is not a directory');
      if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) await chmod(this.directory, 0o700);
    })().catch((error: unknown) => {
      this.#prepared = undefined;
      throw error;
    });
    return this.#prepared;
  }

  /** Makes a rename or unlink durable; platforms that cannot fsync a directory are skipped. */
  async #syncDirectory(): Promise<void> {
    let handle;
    try {
      handle = await open(this.directory, 'r');
      await handle.sync();
    } catch {
      // Windows cannot open a directory for fsync; the rename is still atomic there.
    } finally {
      await handle?.close();
    }
  }
}
