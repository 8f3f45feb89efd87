// FileInstallSpool: a local, durable, bounded queue of verified lifecycle events the token store
// could not take (an outage). One fsynced file per entry; drainers claim an entry by renaming it, so
// two processes draining one directory never apply the same entry twice. Shared fairly: an entry's
// name carries its portal and its slot (portal, chain, replace rule), so a newer entry for a slot
// replaces the older one and each portal holds at most its share; entries that cannot be replayed
// (corrupt, undecryptable) go to quarantine/ and stop counting.

import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DecryptionError, SpoolFullError } from '../errors.js';
import { consoleLogger, describeError, type Logger } from '../logger.js';
import { observedLogger } from '../logger.js';
import { positiveInteger } from '../store/adapter-options.js';
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
  /** At most this many entries (pending or being replayed; quarantined ones do not count). @defaultValue 1000 */
  readonly maxEntries?: number | undefined;
  /**
   * At most this many entries of one portal (pending or being replayed), so one tenant cannot take
   * the spool from the others. A portal needs one per chain: a newer entry for the same chain (and
   * replace rule) replaces the older one.
   * @defaultValue 10
   */
  readonly maxEntriesPerPortal?: number | undefined;
  /**
   * At most this many files in `quarantine/` (entries that could not be replayed: corrupt, or not
   * decryptable with the keys given); past it the oldest are removed, with a warning.
   * @defaultValue 100
   */
  readonly maxQuarantined?: number | undefined;
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

/**
 * What `apply` tells {@link FileInstallSpool.drain}: stored, superseded (both remove the entry), or try again later.
 * @inline
 */
export type SpoolApplyOutcome = 'applied' | 'stale' | 'retry';

/** What one {@link FileInstallSpool.drain} did. */
export interface SpoolDrainResult {
  /** Entries `apply` stored, now removed. */
  readonly applied: number;
  /** Entries `apply` found superseded by a newer record, now removed. */
  readonly stale: number;
  /** Entries kept for a later drain (`apply` answered `retry`). */
  readonly retried: number;
  /** Entries kept because `apply` threw, or moved to `quarantine/` (corrupt, or not decryptable here). */
  readonly failed: number;
}

// An id: put time (ms), a counter, random; since the per-portal share, also the portal's and the
// slot's hashes (ids without them, written by an older release, count for no portal).
const ID_BODY = String.raw`\d{15}-\d{6}-[0-9a-f]{8}(?:-([0-9a-f]{12})-([0-9a-f]{12}))?`;
const ID = new RegExp(String.raw`^(${ID_BODY})\.json$`);
const CLAIM = new RegExp(String.raw`^(${ID_BODY})\.claim-(\d{15})-[0-9a-f]{8}$`);
const TEMP = /^\.tmp-[0-9a-f]{16}$/;
const CORRUPT = new RegExp(String.raw`^(${ID_BODY})\.corrupt$`);
const QUARANTINE = 'quarantine';
const TEMP_MAX_AGE_MS = 60_000;
const pad = (n: number, width: number): string => String(n).padStart(width, '0');
const hash12 = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 12);

/** An entry file as its name tells it. */
interface Listed {
  readonly name: string;
  readonly id: string;
  /** The portal's hash, for names that carry it. */
  readonly portal: string | undefined;
  /** The slot's hash (portal, chain, replace rule), for names that carry it. */
  readonly slot: string | undefined;
  readonly claimed: boolean;
}

function listed(name: string): Listed | undefined {
  const match = ID.exec(name) ?? CLAIM.exec(name);
  if (match === null) return undefined;
  return { name, id: match[1] as string, portal: match[2], slot: match[3], claimed: !name.endsWith('.json') };
}

/** The hashes an entry's name carries: its portal's, and its slot's (a newer entry of a slot replaces the older). */
function hashesOf(entry: SpoolEntry): { portal: string; slot: string } {
  const chain = entry.record.chain ?? 'portal';
  // An administrator's entry has a slot of its own: a later entry of someone else never removes it.
  const slot = [entry.memberId, chain, entry.replace ?? 'always', ...(entry.admin === true ? ['admin'] : [])];
  return { portal: hash12(`portal\u0000${entry.memberId}`), slot: hash12(JSON.stringify(slot)) };
}

const isMissing = (error: unknown): boolean => (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

/**
 * A local durable queue for verified install and update events that met a store outage: Bitrix24
 * sends each lifecycle event once, so the handler spools it, answers 200, and replays it later.
 *
 * `put` writes one file per entry (a temp file, fsynced, renamed, the directory fsynced; mode
 * `0600` in a `0700` directory) and refuses with {@link SpoolFullError} past `maxEntriesPerPortal`,
 * `maxEntries` or `maxBytes`. Only a portal's newest event per chain matters: a newer entry for
 * the same chain (and replace rule) replaces the older one, so a portal posting its own fresh
 * chains holds one entry, and its share bounds the rest. An entry that cannot be replayed (corrupt,
 * or not decryptable with the keys given) is moved to `quarantine/` with a warning and no longer
 * counts; move it back as `<id>.json` to replay it. `drain` replays entries oldest first: each is claimed by renaming its file to a
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
  readonly #maxPerPortal: number;
  readonly #maxQuarantined: number;
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
    this.#maxEntries = positiveInteger(options.maxEntries, 'options.maxEntries') ?? 1000;
    this.#maxPerPortal = positiveInteger(options.maxEntriesPerPortal, 'options.maxEntriesPerPortal') ?? 10;
    this.#maxQuarantined = positiveInteger(options.maxQuarantined, 'options.maxQuarantined') ?? 100;
    this.#maxBytes = positiveInteger(options.maxBytes, 'options.maxBytes') ?? 8 * 1024 * 1024;
    this.#claimTimeoutMs = positiveInteger(options.claimTimeoutMs, 'options.claimTimeoutMs') ?? 10 * 60_000;
    this.#cipher = options.encryption === undefined ? undefined : new TokenCipher(options.encryption, 'options.encryption');
    this.#allowPlaintext = options.encryption?.allowPlaintext ?? true;
    this.#logger = observedLogger(options.logger ?? consoleLogger);
  }

  /**
   * Keeps one entry durably (fsynced before it resolves). Only a portal's newest entry per chain
   * (and replace rule, and whether it is an administrator's) matters: one kept for the same chain with an older or equal `ts` is removed
   * once this one is written, and when the kept one is newer this one is not written at all.
   * @returns the entry's id (or the newer kept entry's).
   * @throws SpoolFullError when `maxEntriesPerPortal`, `maxEntries` or `maxBytes` would be exceeded
   *   (answer 503); a `TypeError` for an invalid entry; the file system's error when the disk fails.
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
    const hashes = hashesOf(checked);
    const files = (await readdir(this.directory)).map(listed).filter((file) => file !== undefined);
    // The slot's pending entries: a newer one makes this one moot; older ones this one replaces.
    const replaced: Listed[] = [];
    for (const file of files) {
      if (file.claimed || file.slot !== hashes.slot) continue;
      const ts = await this.#slotTsOf(file.name, checked);
      if (ts === undefined) continue; // gone meanwhile, unreadable (drain quarantines it), or another slot after all
      if (ts > checked.ts) return file.id;
      replaced.push(file);
    }
    const counted = files.filter((file) => !replaced.includes(file));
    if (counted.filter((file) => file.portal === hashes.portal).length + 1 > this.#maxPerPortal) {
      throw new SpoolFullError('portal', { memberId: checked.memberId });
    }
    if (counted.length + 1 > this.#maxEntries) throw new SpoolFullError('entries', { memberId: checked.memberId });
    if ((await this.#bytesOf(counted)) + bytes.length > this.#maxBytes) throw new SpoolFullError('bytes', { memberId: checked.memberId });
    const id = `${this.#nextId(spooledAt)}-${hashes.portal}-${hashes.slot}`;
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
    for (const file of replaced) {
      // A drainer may have claimed it meanwhile: then replay's own ts check keeps the newer chain.
      await unlink(join(this.directory, file.name)).catch((error: unknown) => {
        if (!isMissing(error)) throw error;
      });
    }
    await this.#syncDirectory();
    return id;
  }

  /**
   * The `ts` of an entry file of the same slot as `entry` (the fields compared are in clear even
   * when sealed), or `undefined` when it is gone, unreadable, or of another slot (a hash collision).
   */
  async #slotTsOf(name: string, entry: SpoolEntry): Promise<number | undefined> {
    try {
      const stored = JSON.parse(await readFile(join(this.directory, name), 'utf8')) as {
        memberId?: unknown;
        ts?: unknown;
        replace?: unknown;
        admin?: unknown;
        record?: { chain?: unknown } | null;
      } | null;
      const sameSlot =
        stored?.memberId === entry.memberId &&
        (stored.record?.chain ?? 'portal') === (entry.record.chain ?? 'portal') &&
        stored.replace === (entry.replace ?? 'always') &&
        (stored.admin === true) === (entry.admin === true);
      return sameSlot && typeof stored.ts === 'number' && Number.isFinite(stored.ts) ? stored.ts : undefined;
    } catch {
      return undefined;
    }
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
      const id = (listed(name) as Listed).id;
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
      } else if (outcome === 'corrupt' || outcome === 'undecryptable') {
        await this.#quarantine(claimed, `${id}.${outcome}`);
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

  async #replay(
    id: string,
    path: string,
    apply: (entry: SpooledEntry) => Promise<SpoolApplyOutcome>,
  ): Promise<SpoolApplyOutcome | 'failed' | 'corrupt' | 'undecryptable'> {
    let entry: SpooledEntry;
    try {
      entry = parseEntry(id, await readFile(path), this.#cipher, this.#allowPlaintext);
    } catch (error) {
      if (error instanceof CorruptEntryError) {
        this.#logger.warn({ id, reason: error.message }, 'a spooled entry is corrupt; moved to quarantine/<id>.corrupt, it no longer counts against the spool\'s bounds');
        return 'corrupt';
      }
      if (error instanceof DecryptionError) {
        this.#logger.warn(
          { id, memberId: error.memberId, keyId: error.keyId, reason: error.reason },
          'a spooled entry cannot be decrypted with the keys given; moved to quarantine/<id>.undecryptable (move it back as <id>.json to replay it once the key is configured)',
        );
        return 'undecryptable';
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
      if (claim !== null && now - Number(claim[4]) > this.#claimTimeoutMs) {
        await rename(join(this.directory, name), join(this.directory, `${claim[1]}.json`)).catch((error: unknown) => {
          if (!isMissing(error)) throw error;
        });
        this.#logger.warn({ id: claim[1] }, 'took back a spooled entry whose drainer did not finish it in claimTimeoutMs');
      } else if (CORRUPT.test(name)) {
        // Set aside in the spool's directory by an older release: quarantined now, so it stops counting.
        await this.#quarantine(join(this.directory, name), name);
      } else if (TEMP.test(name)) {
        const info = await stat(join(this.directory, name)).catch(() => undefined);
        if (info !== undefined && now - info.mtimeMs > TEMP_MAX_AGE_MS) await unlink(join(this.directory, name)).catch(() => undefined);
      }
    }
    return (await readdir(this.directory)).filter((name) => ID.test(name)).sort();
  }

  /** The bytes of the entry files listed (those drained meanwhile count nothing). */
  async #bytesOf(files: readonly Listed[]): Promise<number> {
    let bytes = 0;
    for (const file of files) bytes += (await stat(join(this.directory, file.name)).catch(() => undefined))?.size ?? 0;
    return bytes;
  }

  /** Moves an entry that cannot be replayed to `quarantine/` (out of the count), keeping at most `maxQuarantined` there. */
  async #quarantine(path: string, name: string): Promise<void> {
    const directory = join(this.directory, QUARANTINE);
    await mkdir(directory, { recursive: true, mode: 0o700 });
    await rename(path, join(directory, name)).catch((error: unknown) => {
      if (!isMissing(error)) throw error;
    });
    const kept = (await readdir(directory)).sort();
    for (const old of kept.slice(0, Math.max(0, kept.length - this.#maxQuarantined))) {
      await unlink(join(directory, old)).catch(() => undefined);
      this.#logger.warn({ file: old, maxQuarantined: this.#maxQuarantined }, 'removed the oldest quarantined spool entry (maxQuarantined reached)');
    }
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
