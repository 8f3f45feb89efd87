// The file store's names and layout: how a chain's key becomes a file name and back, the file
// format, and the small helpers the store's methods share. Pure: no I/O.

import type { ChainId, ChainKey, PortalRecord } from './token-store.js';
import { checkMemberId, resolveKey } from './record-checks.js';
import { errorCode } from './file-lock.js';

/** The longest `memberId` a file name can carry (hex doubles it; names stay well under 255 bytes). */
export const MAX_MEMBER_ID_BYTES = 100;
/** Internal write-lock lease: far longer than a read-compare-write, short enough to survive a crash. */
export const WRITE_LEASE_MS = 5_000;
/** How long a write waits for the internal lock: longer than the lease, so a crashed writer is outlived. */
export const WRITE_LOCK_WAIT_MS = 10_000;
/**
 * A temp file older than this (by mtime) is a dead writer's: a live one renames or removes its temp
 * file before its write lease lapses, and the lease is far shorter.
 */
export const STALE_TEMP_MS = 60_000;
/** The on-disk format of a record file, so a later release can migrate old files. */
export const FORMAT = 1;

/** What a chain's file holds: its record, or the tombstone of a deleted one (no tokens). */
export type FileContent =
  | { readonly format: typeof FORMAT; readonly record: PortalRecord }
  | {
      readonly format: typeof FORMAT;
      readonly deleted: { readonly memberId: string; readonly chain?: ChainId; readonly version: number };
    };
/** A portal chain's record file: `<hex of memberId>.json`. User chains' files never match it. */
export const RECORD_FILE = /^((?:[0-9a-f]{2})+)\.json$/;
/** A user chain's record file: `<hex of memberId>.user-<id>.json`. */
export const USER_CHAIN_FILE = /^((?:[0-9a-f]{2})+)\.user-([1-9][0-9]{0,15})\.json$/;
/** Any temp file this store (or its locks) writes: `.<stem>[.lock|.wlock].<random>.tmp`, or the ready probe. */
export const TEMP_FILE = /^\.(?:(?:[0-9a-f]{2})+(?:\.user-[1-9][0-9]{0,15})?(?:\.w?lock)?|probe)\.[0-9a-f-]+\.tmp$/;
/** Errors that may pass on their own: retrying later can succeed. */
const TRANSIENT_CODES = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'EINTR', 'ETIMEDOUT']);
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A checked key with the file-name stem of its chain. */
export interface Located {
  readonly memberId: string;
  readonly chain: ChainId;
  readonly stem: string;
}

/** What a write section gets: a check that the write lock is still ours, and the temp file to write through. */
export interface WriteTurn {
  readonly assertHeld: () => Promise<void>;
  readonly temp: string;
}

/** Checks a key and computes its chain's file-name stem. */
export function locate(key: ChainKey): Located {
  const { memberId, chain } = resolveKey(key);
  const hex = fileBase(memberId);
  return { memberId, chain, stem: chain === 'portal' ? hex : `${hex}.user-${chain.slice('user:'.length)}` };
}

/** The file-name stem of a portal: the hex of its UTF-8 bytes, case-proof and free of path syntax. */
export function fileBase(memberId: string): string {
  checkMemberId(memberId);
  const bytes = Buffer.from(memberId, 'utf8');
  if (bytes.length > MAX_MEMBER_ID_BYTES) {
    throw new TypeError(`memberId must be at most ${MAX_MEMBER_ID_BYTES} UTF-8 bytes for FileTokenStore`);
  }
  return bytes.toString('hex');
}

/** Whether `name` is a record temp file of the chain `stem` (a lock's temp files are not). */
export function isTempOf(name: string, stem: string): boolean {
  return name.startsWith(`.${stem}.`) && /^[0-9a-f-]+\.tmp$/.test(name.slice(stem.length + 2));
}

/** How a message names a chain. */
export function describe(at: Located): string {
  return at.chain === 'portal' ? `portal ${at.memberId}` : `chain ${at.chain} of portal ${at.memberId}`;
}

/** Whether a file-system error may pass on its own. */
export function isTransient(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && TRANSIENT_CODES.has(code);
}

/** Orders strings by UTF-16 code units, as `list` promises. */
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The `memberId` a portal file's hex stem encodes, or `undefined` for a name this store never writes. */
export function decodeName(name: string): string | undefined {
  try {
    const memberId = utf8.decode(Buffer.from(name, 'hex'));
    // Only names this store could have written: a stray file must not be read as another portal's.
    return memberId.length > 0 && Buffer.from(memberId, 'utf8').toString('hex') === name ? memberId : undefined;
  } catch {
    return undefined;
  }
}
