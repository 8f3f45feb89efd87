// EncryptedTokenStore: wraps any TokenStore and keeps the access, refresh and application tokens
// sealed with AES-256-GCM (token-cipher.ts) in the inner store's own fields. Keys rotate by id.

import { consoleLogger, type Logger } from '../../logger.js';
import { observedLogger } from '../../logger.js';
import { rekeyStore, type RekeyOptions, type RekeyResult } from './rekey.js';
import { resolveKey } from '../record-checks.js';
import { bindingOf, openFields, sealFields, type OpenOptions } from './sealed-fields.js';
import { LRUCache } from 'lru-cache';
import { TOKEN_FIELDS, TokenCipher, type SealBinding, type TokenEncryptionOptions } from './token-cipher.js';
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
  StoreChangeListener,
  StoreLease,
  LockedRead,
  StoreSubscription,
  TokenStore,
  UnreadableRecord,
} from '../token-store.js';
import { DecryptionError } from '../../errors/store.js';

/** Options of {@link EncryptedTokenStore}: the keys, plus how records from before encryption are read. */
export interface EncryptedTokenStoreOptions extends TokenEncryptionOptions {
  /**
   * Whether a token stored in plaintext (written before encryption was turned on) is read as is. It
   * is sealed on the record's next write that carries it, or at once by {@link EncryptedTokenStore.rekey};
   * the first one read is logged (a warning, once per store). Set `false` once `rekey()` has
   * converted everything: a plaintext value then throws a {@link index.DecryptionError}, so nobody with
   * write access to the database can plant a token in clear.
   * @defaultValue `true`
   */
  readonly allowPlaintext?: boolean | undefined;
  /**
   * Receives the one warning about plaintext records (ids only, never a value).
   * @defaultValue warnings and errors on the console
   */
  readonly logger?: Logger | undefined;
}

/**
 * A {@link TokenStore} that encrypts the tokens of every record it writes to another store.
 *
 * `accessToken`, `refreshToken` and `applicationToken` are sealed with AES-256-GCM (`node:crypto`),
 * a fresh random 12-byte IV per value, into one string in the same field:
 * `v1.<keyId>.<iv>.<ciphertext and tag>` (base64url), so the inner store needs no schema change.
 * The record's `memberId`, `chain` and field name are bound in as associated data: a value copied
 * to another portal's, chain's or field's record does not decrypt. Empty strings stay empty and
 * `null` stays `null`. Every other field (endpoints, expiry, state, versions) stays readable, so
 * sweeps and operators' queries keep working.
 *
 * Several keys read, one writes: a record is sealed with `writeKeyId` on each write that carries
 * its tokens (an upsert, or an update whose patch holds them), and {@link rekey} re-seals every
 * record. A value that cannot be opened (unknown key id, wrong key, altered or truncated value)
 * throws a {@link DecryptionError}, never a garbage token; the pool passes it to the caller and
 * never revokes a portal for it. Locks, listing, capabilities and the change feed (which carries no
 * token) are the inner store's.
 *
 * @example
 * ```ts
 * const store = new EncryptedTokenStore(new FileTokenStore({ directory: './tokens' }), {
 *   keys: { k2: process.env.TOKEN_KEY_2!, k1: process.env.TOKEN_KEY_1! }, // base64 of 32 bytes
 *   writeKeyId: 'k2',
 * });
 * ```
 */
export class EncryptedTokenStore implements TokenStore {
  /** The inner store's capabilities, unchanged. */
  readonly capabilities: StoreCapabilities;
  /** The wrapped store (it holds sealed values). */
  readonly inner: TokenStore;
  /** Present when the inner store has it: takes the inner store's lock. See {@link TokenStore.tryLock}. */
  declare readonly tryLock?: (key: ChainKey, ttlMs: number) => Promise<StoreLease | undefined>;
  /**
   * Present when the inner store has it: the inner store's lock and record in one round trip, the
   * record decrypted. A record that does not open frees the lease taken with it before the
   * `DecryptionError` is thrown. See {@link TokenStore.tryLockAndGet}.
   */
  declare readonly tryLockAndGet?: (key: ChainKey, ttlMs: number) => Promise<LockedRead>;
  /** Present when the inner store has it: the inner store's change feed (no token in it). See {@link TokenStore.subscribe}. */
  declare readonly subscribe?: (listener: StoreChangeListener) => Promise<StoreSubscription>;
  /** Present when the inner store has it: the inner store's request budget (holds no token). See {@link TokenStore.acquire}. */
  declare readonly acquire?: (key: string, spec: BudgetSpec) => Promise<BudgetGrant>;
  /** Present when the inner store lists: its records, decrypted. See {@link TokenStore.list}. */
  declare readonly list?: (options?: PortalListOptions) => Promise<PortalListPage>;
  /** Present when the inner store lists: its user chains, decrypted. See {@link TokenStore.listChains}. */
  declare readonly listChains?: (memberId: string) => Promise<readonly PortalRecord[]>;
  /** Present when the inner store has it: every chain, decrypted. See {@link TokenStore.listAll}. */
  declare readonly listAll?: (options?: PortalListOptions) => Promise<PortalListPage>;

  readonly #cipher: TokenCipher;
  readonly #open: OpenOptions;
  readonly #logger: Logger;
  #warnedPlaintext = false;
  /** The destination of each chain at the newest version this store opened or wrote (no token in it). */
  readonly #bindings = new LRUCache<string, { version: number; binding: SealBinding }>({ max: 10_000 });

  /**
   * @param inner - the store that keeps the records (any {@link TokenStore}).
   * @param options - the keys by id and the write key's id; see {@link EncryptedTokenStoreOptions}.
   * @throws TypeError when a key is not 32 bytes, a key id is malformed, or `writeKeyId` names no key
   *   (the message names the key id, never the key).
   */
  constructor(inner: TokenStore, options: EncryptedTokenStoreOptions) {
    if (inner === null || typeof inner !== 'object' || typeof inner.get !== 'function') {
      throw new TypeError('inner must be a TokenStore');
    }
    this.inner = inner;
    this.#cipher = new TokenCipher(options);
    const allowPlaintext = options.allowPlaintext ?? true;
    if (typeof allowPlaintext !== 'boolean') throw new TypeError('options.allowPlaintext must be a boolean');
    this.#logger = observedLogger(options.logger ?? consoleLogger);
    this.#open = { allowPlaintext };
    this.capabilities = { ...inner.capabilities };
    // Optional methods exist exactly when the inner store has them.
    const self = this as { -readonly [K in 'tryLock' | 'tryLockAndGet' | 'subscribe' | 'list' | 'listChains' | 'listAll' | 'acquire']?: EncryptedTokenStore[K] };
    if (inner.acquire !== undefined) self.acquire = (key, spec) => (inner.acquire as NonNullable<TokenStore['acquire']>).call(inner, key, spec);
    if (inner.tryLock !== undefined) self.tryLock = (key, ttlMs) => (inner.tryLock as NonNullable<TokenStore['tryLock']>).call(inner, key, ttlMs);
    if (inner.tryLockAndGet !== undefined) {
      self.tryLockAndGet = async (key, ttlMs) => {
        const { lease, record } = await (inner.tryLockAndGet as NonNullable<TokenStore['tryLockAndGet']>).call(inner, key, ttlMs);
        try {
          return { lease, record: record === undefined ? undefined : this.#openRecord(record) };
        } catch (error) {
          await lease?.release().catch(() => undefined);
          throw error;
        }
      };
    }
    if (inner.subscribe !== undefined) {
      self.subscribe = (listener) => (inner.subscribe as NonNullable<TokenStore['subscribe']>).call(inner, listener);
    }
    // A record that does not open is left out of its page and named in `unreadable`: one bad
    // record must not stop a sweep (or a migration) for every other portal.
    if (inner.list !== undefined) {
      self.list = async (listOptions) => this.#openPage(await (inner.list as NonNullable<TokenStore['list']>).call(inner, listOptions));
    }
    if (inner.listAll !== undefined) {
      self.listAll = async (listOptions) => this.#openPage(await (inner.listAll as NonNullable<TokenStore['listAll']>).call(inner, listOptions));
    }
    if (inner.listChains !== undefined) {
      // An array has no room for the unreadable: they are logged (ids only) and left out.
      self.listChains = async (memberId) => {
        const page = this.#openPage({ records: await (inner.listChains as NonNullable<TokenStore['listChains']>).call(inner, memberId), next: undefined });
        for (const item of page.unreadable ?? []) {
          this.#logger.warn({ memberId: item.memberId, chain: item.chain, code: item.error.code }, 'a stored chain could not be decrypted; it is left out of the listing');
        }
        return page.records;
      };
    }
  }

  /** The id of the key new values are sealed with. */
  get writeKeyId(): string {
    return this.#cipher.writeKeyId;
  }

  /** The inner store's `ready`, when it has one. */
  async ready(): Promise<void> {
    await this.inner.ready?.();
  }

  /** Reads and decrypts a record. See {@link TokenStore.get}. @throws DecryptionError */
  async get(key: ChainKey): Promise<PortalRecord | undefined> {
    const record = await this.inner.get(key);
    return record === undefined ? undefined : this.#openRecord(record);
  }

  /** Seals the record's tokens with the write key and stores it. See {@link TokenStore.upsert}. */
  async upsert(record: PortalRecordInput): Promise<PortalRecord> {
    if (record === null || typeof record !== 'object') throw new TypeError('record must be an object');
    // An invalid memberId or chain is the inner store's TypeError to throw; seal only what can be keyed.
    const chain = record.chain ?? 'portal';
    const sealed = typeof record.memberId === 'string' ? sealFields(this.#cipher, record.memberId, chain, record, bindingOf(record)) : record;
    return this.#openRecord(await this.inner.upsert(sealed));
  }

  /** Seals the tokens in `patch` with the write key; a conditional write. See {@link TokenStore.update}. */
  async update(key: ChainKey, expectedVersion: number, patch: PortalRecordPatch): Promise<ConditionalWriteResult> {
    const { memberId, chain } = resolveKey(key);
    let sealed = patch;
    if (patch !== null && typeof patch === 'object') {
      const carriesTokens = TOKEN_FIELDS.some((field) => typeof patch[field] === 'string');
      const moves = BINDING_FIELDS.some((field) => patch[field] !== undefined);
      if (carriesTokens || moves) {
        // Tokens are sealed to where the record will point after this write: the stored destination
        // (known from the version this write is based on) with the patch's changes over it.
        const known = moves ? undefined : this.#bindings.get(bindingKey(memberId, chain));
        let base: SealBinding | undefined = known?.version === expectedVersion ? known.binding : undefined;
        let tokens: PortalRecordPatch = {};
        if (base === undefined || moves) {
          const stored = await this.inner.get(key);
          if (stored === undefined || stored.version !== expectedVersion) {
            return { ok: false, current: stored === undefined ? undefined : this.#openRecord(stored) };
          }
          base = bindingOf(stored);
          // A move re-seals the tokens it does not carry: they must open at the new destination.
          if (moves) tokens = pickTokens(this.#openRecord(stored));
        }
        const binding = bindingOf({ ...base, ...pickBinding(patch) });
        sealed = sealFields(this.#cipher, memberId, chain, { ...tokens, ...patch }, binding);
      }
    }
    const result = await this.inner.update(key, expectedVersion, sealed);
    if (result.ok) return { ok: true, record: this.#openRecord(result.record) };
    return { ok: false, current: result.current === undefined ? undefined : this.#openRecord(result.current) };
  }

  /** See {@link TokenStore.delete}. */
  delete(key: ChainKey): Promise<boolean> {
    return this.inner.delete(key);
  }

  /** See {@link TokenStore.deletePortal}. */
  deletePortal(memberId: string): Promise<number> {
    return this.inner.deletePortal(memberId);
  }

  /** Closes the inner store. See {@link TokenStore.close}. */
  async close(): Promise<void> {
    await this.inner.close?.();
  }

  /**
   * Re-seals every record whose tokens are in plaintext or sealed with a key other than
   * `writeKeyId`, so retired keys can then be removed. Pages through `list` and `listChains` (the
   * inner store must declare `capabilities.list`) and writes each record with a conditional
   * `update` of its token fields only: a record changed meanwhile is re-read and tried again, never
   * overwritten (a concurrent refresh wins and is sealed with the write key anyway). Plaintext
   * tokens are sealed too, whatever `allowPlaintext` says (this is the migration). Records that
   * cannot be decrypted are reported in `failed` and left as they are. Safe to run while workers
   * use the store, and to run again.
   *
   * Once the result says `failed: []` and `conflicts: 0`, no record uses a key other than
   * `writeKeyId` (unless another process still writes with an old configuration).
   * @example
   * ```ts
   * const result = await store.rekey();
   * console.log(result); // { scanned: 120, rekeyed: 118, current: 2, conflicts: 0, vanished: 0, failed: [] }
   * ```
   */
  rekey(options: RekeyOptions = {}): Promise<RekeyResult> {
    return rekeyStore(this.inner, this.#cipher, { allowPlaintext: true }, options);
  }

  /** A page with each record opened; those that do not open are named in `unreadable`. */
  #openPage(page: PortalListPage): PortalListPage {
    const records: PortalRecord[] = [];
    const unreadable: UnreadableRecord[] = [...(page.unreadable ?? [])];
    for (const record of page.records) {
      try {
        records.push(this.#openRecord(record));
      } catch (error) {
        if (!(error instanceof DecryptionError)) throw error;
        unreadable.push({ memberId: record.memberId, chain: record.chain, error });
      }
    }
    return unreadable.length === 0 ? { records, next: page.next } : { records, next: page.next, unreadable };
  }

  #openRecord(record: PortalRecord): PortalRecord {
    const binding = bindingOf(record);
    const opened = openFields(this.#cipher, record.memberId, record.chain, record, {
      ...this.#open,
      onPlaintext: (field) => {
        if (this.#warnedPlaintext) return;
        this.#warnedPlaintext = true;
        this.#logger.warn(
          { memberId: record.memberId, chain: record.chain, field },
          'read a token stored in plaintext (written before encryption was turned on); it is encrypted on its next write, or run rekey() to encrypt every record now',
        );
      },
    }, binding);
    if (binding !== undefined) this.#bindings.set(bindingKey(record.memberId, record.chain), { version: record.version, binding });
    return opened;
  }
}

/** The fields that decide where a record's tokens go. */
const BINDING_FIELDS = ['domain', 'clientEndpoint', 'serverEndpoint'] as const;

function bindingKey(memberId: string, chain: string): string {
  return `${memberId}\u0000${chain}`;
}

function pickBinding(patch: PortalRecordPatch): Partial<SealBinding> {
  const out: Record<string, unknown> = {};
  for (const field of BINDING_FIELDS) if (patch[field] !== undefined) out[field] = patch[field];
  return out;
}

function pickTokens(record: PortalRecord): PortalRecordPatch {
  const out: Record<string, unknown> = {};
  for (const field of TOKEN_FIELDS) out[field] = record[field];
  return out;
}
