// Stores named by URL: file:, sqlite:, postgres(ql)://, redis(s)://, memory:, wrapped in
// EncryptedTokenStore when B24PT_KEYS is set. Drivers load only when their store is opened.

import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { EncryptedTokenStore } from '../store/encrypted/store.js';
import { FileTokenStore } from '../store/file/store.js';
import { MemoryTokenStore } from '../store/memory/store.js';
import type { TokenStore } from '../store/token-store.js';
import { usageError } from './errors.js';
import { redactUrl } from './url-mask.js';

/** An opened store, with what to tell the operator when it cannot be reached. */
export interface OpenedStore {
  /** The store (encrypted when keys are configured). */
  readonly store: TokenStore;
  /** The URL with any password replaced, for messages. */
  readonly label: string;
  /** What to do when the store is unreachable. */
  readonly hint: string;
  /** Whether the store is wrapped in `EncryptedTokenStore`. */
  readonly encrypted: boolean;
  /**
   * Connects and checks the store before a command uses it: the store's `ready()`, except for a
   * `file:` store opened to read, whose `ready()` would write a probe file and sweep temp files.
   */
  readonly ready: () => Promise<void>;
}

/**
 * What a command does with a store: `read` changes nothing (no table, file, directory or key is
 * created: `status`, `sweep --dry-run`, the source of `migrate`); `write` writes records into a
 * store that may be new (its tables are created) but not a new `file:` directory or `sqlite:` file;
 * `create` may create those too (a target).
 */
export type StoreAccess = 'read' | 'write' | 'create';

/** Encryption keys from the environment (see `parseKeys`). */
export interface KeySettings {
  readonly keys: Record<string, string>;
  readonly writeKeyId: string;
}

/**
 * Reads `B24PT_KEYS` (`id:base64,id:base64`, the first one writes) and `B24PT_WRITE_KEY` (an id
 * in the list; overrides the first). `undefined` when `B24PT_KEYS` is unset or empty.
 */
export function parseKeys(env: NodeJS.ProcessEnv): KeySettings | undefined {
  const raw = env['B24PT_KEYS']?.trim();
  if (raw === undefined || raw === '') {
    if (env['B24PT_WRITE_KEY'] !== undefined && env['B24PT_WRITE_KEY'] !== '') {
      throw usageError('B24PT_WRITE_KEY is set but B24PT_KEYS is not: set B24PT_KEYS=id:base64key[,id:base64key...]');
    }
    return undefined;
  }
  const keys: Record<string, string> = {};
  let first: string | undefined;
  for (const part of raw.split(',')) {
    const entry = part.trim();
    const colon = entry.indexOf(':');
    if (colon < 1 || colon === entry.length - 1) {
      throw usageError('B24PT_KEYS must be a comma-separated list of id:base64key (for example k1:$(openssl rand -base64 32))');
    }
    const id = entry.slice(0, colon);
    if (Object.hasOwn(keys, id)) throw usageError(`B24PT_KEYS names key id ${JSON.stringify(id)} twice`);
    keys[id] = entry.slice(colon + 1);
    first ??= id;
  }
  const writeKeyId = env['B24PT_WRITE_KEY']?.trim() || first!;
  if (!Object.hasOwn(keys, writeKeyId)) throw usageError(`B24PT_WRITE_KEY names ${JSON.stringify(writeKeyId)}, which is not in B24PT_KEYS`);
  return { keys, writeKeyId };
}

export { redactUrl } from './url-mask.js';

function pathOf(url: string, scheme: string, create: boolean): string {
  let rest = url.slice(scheme.length);
  if (rest.startsWith('//')) rest = rest.slice(2);
  if (rest === '') throw usageError(`${scheme} URL needs a path, such as ${scheme}./tokens`);
  const path = resolve(rest);
  // Only a target may be created: a typo in the store to read must not read as an empty store.
  if (!create && !existsSync(path)) throw usageError(`${path} does not exist: check the ${scheme} URL`);
  return path;
}

/** Splits one query parameter off a URL; the rest goes to the driver unchanged. */
function takeParam(url: string, name: string): { url: string; value: string | undefined } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usageError(`not a valid store URL: ${redactUrl(url)}`);
  }
  const value = parsed.searchParams.get(name) ?? undefined;
  if (value === undefined) return { url, value };
  parsed.searchParams.delete(name);
  return { url: parsed.toString(), value };
}

/** A plain (unencrypted) store and what to tell about it; `check` replaces `ready()` when given. */
interface PlainStore {
  readonly store: TokenStore;
  readonly hint: string;
  readonly check?: () => Promise<void>;
}

/** Checks, reading only, that a `file:` store's directory is a directory. */
async function checkDirectory(path: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined) throw usageError(`${path} does not exist: check the file: URL`);
  if (!info.isDirectory()) throw usageError(`${path} is not a directory: check the file: URL`);
}

async function openPlain(url: string, access: StoreAccess): Promise<PlainStore> {
  const create = access === 'create';
  // Off for a command that only reads: a mistyped prefix or database must not get new empty tables.
  const createSchema = access !== 'read';
  if (url.startsWith('file:')) {
    const directory = pathOf(url, 'file:', create);
    return {
      store: new FileTokenStore({ directory }),
      hint: 'check that the directory exists and is writable',
      ...(access === 'read' ? { check: () => checkDirectory(directory) } : {}),
    };
  }
  if (url.startsWith('sqlite:')) {
    const { SqliteTokenStore } = await import('../store/sqlite/index.js');
    return {
      store: new SqliteTokenStore({ filename: pathOf(url, 'sqlite:', create), createSchema }),
      hint: 'check the database file and its directory',
    };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const { url: connectionString, value: tablePrefix } = takeParam(url, 'tablePrefix');
    const { PostgresTokenStore } = await import('../store/postgres/index.js');
    return {
      store: new PostgresTokenStore({ connectionString, tablePrefix, connectTimeoutMs: 5000, createSchema }),
      hint: 'start PostgreSQL or check the URL',
    };
  }
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    const { url: redisUrl, value: keyPrefix } = takeParam(url, 'keyPrefix');
    const { RedisTokenStore } = await import('../store/redis/index.js');
    return {
      store: new RedisTokenStore({ url: redisUrl, keyPrefix, createSchema }),
      hint: 'start Redis or check the URL',
    };
  }
  if (url === 'memory:') return { store: new MemoryTokenStore(), hint: '' };
  throw usageError(
    `unknown store URL ${JSON.stringify(redactUrl(url))}: use file:./dir, sqlite:./file.db, postgres://..., redis://... (see --help)`,
  );
}

/**
 * Opens the store a URL names (the commands call the result's `ready()`, so connection errors
 * surface there), encrypted with the environment's keys when `B24PT_KEYS` is set. A `file:` or
 * `sqlite:` store that does not exist yet is created only with `create` access (a target); with
 * `read` access nothing at all is created (see {@link StoreAccess}).
 */
export async function openStore(url: string, env: NodeJS.ProcessEnv = process.env, access: StoreAccess = 'write'): Promise<OpenedStore> {
  const keys = parseKeys(env);
  let plain: PlainStore;
  try {
    plain = await openPlain(url, access);
  } catch (error) {
    if (error instanceof TypeError) throw usageError(`${redactUrl(url)}: ${error.message}`);
    throw error;
  }
  const label = redactUrl(url);
  const { hint, check } = plain;
  let store = plain.store;
  if (keys !== undefined) {
    try {
      store = new EncryptedTokenStore(plain.store, keys);
    } catch (error) {
      await plain.store.close?.();
      throw usageError(`B24PT_KEYS: ${error instanceof Error ? error.message : 'invalid keys'} (each key is 32 bytes, base64)`);
    }
  }
  const ready = check ?? (async () => await store.ready?.());
  return { store, hint, label, encrypted: keys !== undefined, ready };
}
