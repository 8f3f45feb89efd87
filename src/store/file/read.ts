// The file store's read path: a chain's state is its directory's newest version file (one listing,
// one read on the common path), or, for a chain not yet written by this release, its old record file.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreError } from '../../errors.js';
import { errorCode } from './lock.js';
import { describe, FORMAT, LEGACY_FORMAT, newestGeneration, type Located } from './names.js';
import { readStoredRecord } from '../record-checks.js';
import type { PortalRecord } from '../token-store.js';

/** What a chain holds now: its record (none for a missing or deleted chain), its last version, and the generation read. */
export interface ChainState {
  readonly record: PortalRecord | undefined;
  /** The version of the record or tombstone, 0 when the chain was never written. */
  readonly lastVersion: number;
  /** The generation of the version file read; 0 when the chain has no version file (nothing, or an old record file). */
  readonly generation: number;
}

const EMPTY: ChainState = { record: undefined, lastVersion: 0, generation: 0 };
/** Each retry follows a write that pruned the file just listed; this many in a row means something is wrong. */
const READ_ATTEMPTS = 100;

/** The path of a chain's directory of version files. */
export function chainDirectory(root: string, at: Located): string {
  return join(root, at.stem);
}

/** The path of a chain's record file in the layout of FORMAT 1 releases. */
export function legacyFile(root: string, at: Located): string {
  return join(root, `${at.stem}.json`);
}

/** The names in a directory, or `undefined` when it does not exist (or is not a directory: not ours). */
export async function namesIn(path: string): Promise<string[] | undefined> {
  try {
    return await readdir(path);
  } catch (error) {
    const code = errorCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** A file's text, or `undefined` when it does not exist. */
async function textOf(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Reads a chain: lists its directory and reads the newest version file. A file pruned between the
 * listing and the read (a newer write landed) means listing again. With no version file, the old
 * record file is read; when that is missing too the directory is listed once more, because a first
 * write may have migrated the old file in between (it links the new version before removing the
 * old file). So a read costs a listing and a file read; a missing chain, three calls.
 * @throws StoreError for a corrupt file (never quoting it) or a chain that keeps changing under the reader.
 */
export async function readChain(root: string, at: Located): Promise<ChainState> {
  const directory = chainDirectory(root, at);
  for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
    const names = await namesIn(directory);
    const generation = names === undefined ? 0 : newestGeneration(names);
    if (generation > 0) {
      const text = await textOf(join(directory, `${generation}.json`));
      if (text !== undefined) return { ...parseContent(text, at, FORMAT), generation };
      continue;
    }
    if (attempt > 0) return EMPTY;
    const old = await textOf(legacyFile(root, at));
    if (old !== undefined) return { ...parseContent(old, at, LEGACY_FORMAT), generation: 0 };
  }
  throw new StoreError(`The files of ${describe(at)} kept changing while being read`, { memberId: at.memberId, transient: true });
}

/** Parses a version file (or an old record file): its record, or nothing for a tombstone, and the last version. */
function parseContent(text: string, at: Located, format: number): { record: PortalRecord | undefined; lastVersion: number } {
  const corrupt = (why: string): StoreError =>
    new StoreError(`Record file of ${describe(at)} is corrupt (${why})`, { memberId: at.memberId });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The parser's message quotes the file's text, which holds tokens: keep it out of the error.
    throw corrupt('not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || (parsed as { format?: unknown }).format !== format) {
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
