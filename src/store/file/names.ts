// The file store's names and layout: how a chain's key becomes a directory name and back, the names
// of version, lock and temp files, the file format, and the small helpers the store's modules share.
// Pure: no I/O.
//
// Layout of the store's directory (FORMAT 2):
//   <stem>/<generation>.json   a chain's version files (mode 0600; the directory 0700); the highest
//                              generation is the chain's state, lower ones are pruned by the next write
//   <stem>.wlock, <stem>.lock  the internal write lease and the public lock of the chain
//   .<stem>.<lease>.tmp        a write in progress (beside the chain directories, so one listing finds them all)
//   <stem>.json                a chain written by a FORMAT 1 release, until the chain's first write migrates it
//   budgets/                   the request budgets
// where <stem> is the hex of the memberId for the portal's chain and `<hex>.user-<id>` for a user's.

import { userIdOf, type ChainId, type ChainKey, type PortalRecord } from '../token-store.js';
import { checkMemberId, isChainId, resolveKey } from '../record-checks.js';
import { errorCode } from './lock.js';

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
/**
 * The on-disk format of a version file. 2: each chain is a directory of version files (`<stem>/<n>.json`);
 * 1 (read only, migrated by the chain's first write): one record file per chain (`<stem>.json`).
 */
export const FORMAT = 2;
/** The format of the one-file-per-chain layout of earlier releases, still read until a chain's first write. */
export const LEGACY_FORMAT = 1;

/** What a version file holds: a record, or the tombstone of a deleted one (no tokens). */
export type FileContent =
  | { readonly format: typeof FORMAT; readonly record: PortalRecord }
  | {
      readonly format: typeof FORMAT;
      readonly deleted: { readonly memberId: string; readonly chain?: ChainId; readonly version: number };
    };
/** A portal chain's directory (`<hex of memberId>`) or, from earlier releases, its record file (`<hex>.json`). */
export const PORTAL_ENTRY = /^((?:[0-9a-f]{2})+)(?:\.json)?$/;
/** A user chain's directory (`<hex>.user-<id>`) or, from earlier releases, its record file (`<hex>.user-<id>.json`). */
export const USER_CHAIN_ENTRY = /^((?:[0-9a-f]{2})+)\.user-([1-9][0-9]{0,15})(?:\.json)?$/;
/** A version file inside a chain's directory: `<generation>.json`, the generation a positive decimal integer. */
export const VERSION_FILE = /^([1-9][0-9]{0,15})\.json$/;
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

/** Checks a key and computes its chain's file-name stem. */
export function locate(key: ChainKey): Located {
  const { memberId, chain } = resolveKey(key);
  const hex = fileBase(memberId);
  const userId = userIdOf(chain);
  return { memberId, chain, stem: userId === undefined ? hex : `${hex}.user-${userId}` };
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

/** The generation a version file's name holds, or `undefined` for any other name. */
export function generationOf(name: string): number | undefined {
  const digits = VERSION_FILE.exec(name)?.[1];
  const generation = digits === undefined ? undefined : Number(digits);
  return generation !== undefined && Number.isSafeInteger(generation) ? generation : undefined;
}

/** The highest generation among a chain directory's names, 0 when it holds no version file. */
export function newestGeneration(names: readonly string[]): number {
  let newest = 0;
  for (const name of names) newest = Math.max(newest, generationOf(name) ?? 0);
  return newest;
}

/** The user chains of `memberId` among the store directory's names (directories or old record files), by chain id. */
export function userChainsIn(names: readonly string[], memberId: string): Located[] {
  const portal = locate(memberId);
  const chains = new Map<string, Located>();
  for (const name of names) {
    const match = USER_CHAIN_ENTRY.exec(name);
    const chain = `user:${match?.[2] ?? ''}`;
    if (match?.[1] === portal.stem && isChainId(chain)) chains.set(chain, locate({ memberId, chain }));
  }
  return [...chains.values()].sort((a, b) => byCodeUnits(a.chain, b.chain));
}

/** The portals whose `memberId` sorts after `after` among the store directory's names, in `list` order. */
export function portalsIn(names: readonly string[], after: string | undefined): Located[] {
  const portals = new Map<string, Located>();
  for (const name of names) {
    const hex = PORTAL_ENTRY.exec(name)?.[1];
    const memberId = hex === undefined ? undefined : decodeName(hex);
    if (hex !== undefined && memberId !== undefined && (after === undefined || memberId > after)) {
      portals.set(hex, { memberId, chain: 'portal', stem: hex });
    }
  }
  return [...portals.values()].sort((a, b) => byCodeUnits(a.memberId, b.memberId));
}

/** Every chain among the store directory's names (portal and user chains), in `listAll` order. */
export function allChainsIn(names: readonly string[]): Located[] {
  const chains = new Map<string, Located>();
  for (const name of names) {
    const user = USER_CHAIN_ENTRY.exec(name);
    const hex = user?.[1] ?? PORTAL_ENTRY.exec(name)?.[1];
    const memberId = hex === undefined ? undefined : decodeName(hex);
    if (memberId === undefined) continue;
    const chain = user === null ? 'portal' : `user:${user[2] ?? ''}`;
    if (chain !== 'portal' && !isChainId(chain)) continue;
    const at = chain === 'portal' ? { memberId, chain: 'portal' as const, stem: hex as string } : locate({ memberId, chain: chain as ChainId });
    chains.set(at.stem, at);
  }
  return [...chains.values()].sort((a, b) => byCodeUnits(a.memberId, b.memberId) || byCodeUnits(a.chain, b.chain));
}

