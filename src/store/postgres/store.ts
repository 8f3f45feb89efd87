// PostgresTokenStore: the TokenStore contract on PostgreSQL. Every write is one statement (a data-
// modifying CTE) whose implicit transaction also carries its pg_notify, so a change is announced
// exactly when it commits; conditional writes compare the version inside the UPDATE itself.

import { randomUUID } from 'node:crypto';
import { StoreError } from '../../errors.js';
import { consoleLogger, observedLogger, type Logger } from '../../logger.js';
import { checkOneOf, positiveInteger } from '../adapter-options.js';
import { budgetStep, checkBudgetKey } from '../budget-math.js';
import {
  checkExpectedVersion,
  checkListOptions,
  checkMemberId,
  checkPatch,
  checkRecordInput,
  checkTtlMs,
  resolveKey,
  type ResolvedKey,
} from '../record-checks.js';
import { chainCursor, readChainCursor } from '../record-checks.js';
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
} from '../token-store.js';
import { loadDriver, type PgPoolLike, type PgQueryResult } from './driver.js';
import { ConnectionRoom } from './capacity.js';
import { storeFailure } from './errors.js';
import { noFeedConfig, PgFeed } from './feed.js';
import { checkStorable, COLUMNS, DATA_FIELDS, param, rowToRecord } from './rows.js';
import type { PostgresTokenStoreOptions } from './options.js';
import { checkSchema, DEFAULT_TABLE_PREFIX, migrate, schemaNames, type SchemaNames } from './schema.js';
import { durableTail, MAX_VERSION, NOTIFY, statements, type Statements } from './sql.js';

/** The default `maxConnections`: 30 workers with the feed's connection each fit a default server (90 of 100). */
const DEFAULT_MAX_CONNECTIONS = 2;

/**
 * A {@link TokenStore} on PostgreSQL (node-postgres, the optional peer `pg`, loaded on first use):
 * shared by every process that opens the same database and `tablePrefix`, with per-chain locks,
 * listing and a change feed over `LISTEN`/`NOTIFY`.
 *
 * The store creates and migrates its own tables (see {@link PostgresTokenStore.ready}), unless
 * `createSchema` is `false`.
 *
 * @example
 * ```ts
 * import { PostgresTokenStore } from 'b24-portal-tokens/stores/postgres';
 *
 * const store = new PostgresTokenStore({ connectionString: process.env.DATABASE_URL! });
 * await store.ready(); // fails fast, with a StoreError saying what is wrong
 * const pool = new PortalClientPool({ store, clientId, clientSecret });
 * ```
 */
export class PostgresTokenStore implements TokenStore {
  /** Locks, listing and the change feed work, across every process sharing the tables. */
  readonly capabilities: StoreCapabilities = { lock: true, crossProcess: true, list: true, changes: true, budget: true };
  /** The validated table prefix. */
  readonly tablePrefix: string;

  readonly #names: SchemaNames;
  readonly #sql: Statements;
  readonly #given: PgPoolLike | undefined;
  readonly #config: Record<string, unknown> | undefined;
  readonly #feeds = new Set<PgFeed>();
  readonly #listenUrl: string | undefined;
  readonly #probeTimeoutMs: number;
  readonly #probeIntervalMs: number;
  readonly #logger: Logger;
  readonly #room: ConnectionRoom;
  readonly #durable: boolean;
  readonly #createSchema: boolean;
  #warnedDeaf = false;
  #pool: Promise<PgPoolLike> | undefined;
  #ready: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  /** Checks the options (a TypeError for bad ones); connects only when first used. */
  constructor(options: PostgresTokenStoreOptions) {
    checkOneOf(options, 'connectionString', 'pool');
    const { connectionString, pool } = options;
    this.#names = schemaNames(options.tablePrefix ?? DEFAULT_TABLE_PREFIX);
    this.tablePrefix = this.#names.prefix;
    if (pool !== undefined) {
      if (pool === null || typeof pool.query !== 'function' || typeof pool.connect !== 'function') {
        throw new TypeError('options.pool must be a pg.Pool');
      }
      this.#given = pool;
    } else {
      if (typeof connectionString !== 'string' || connectionString.length === 0) {
        throw new TypeError('options.connectionString must be a non-empty string');
      }
      const { maxConnections, connectTimeoutMs } = options;
      this.#config = {
        connectionString,
        max: positiveInteger(maxConnections, 'options.maxConnections') ?? DEFAULT_MAX_CONNECTIONS,
        connectionTimeoutMillis: positiveInteger(connectTimeoutMs, 'options.connectTimeoutMs') ?? 10_000,
        keepAlive: true,
      };
    }
    const { listenConnectionString, feedProbeTimeoutMs, feedProbeIntervalMs, logger } = options;
    if (listenConnectionString !== undefined && (typeof listenConnectionString !== 'string' || listenConnectionString.length === 0)) {
      throw new TypeError('options.listenConnectionString must be a non-empty string');
    }
    if (logger !== undefined && (logger === null || typeof logger.warn !== 'function')) throw new TypeError('options.logger must be a Logger');
    this.#listenUrl = listenConnectionString;
    this.#probeTimeoutMs = positiveInteger(feedProbeTimeoutMs, 'options.feedProbeTimeoutMs') ?? 2_000;
    this.#probeIntervalMs = positiveInteger(feedProbeIntervalMs, 'options.feedProbeIntervalMs') ?? 30_000;
    this.#logger = observedLogger(logger ?? consoleLogger);
    this.#room = new ConnectionRoom(Number(this.#config?.['connectionTimeoutMillis'] ?? 10_000), this.#logger);
    const { durableChainWrites } = options;
    if (durableChainWrites !== undefined && typeof durableChainWrites !== 'boolean') throw new TypeError('options.durableChainWrites must be a boolean');
    this.#durable = durableChainWrites ?? true;
    const { createSchema } = options;
    if (createSchema !== undefined && typeof createSchema !== 'boolean') throw new TypeError('options.createSchema must be a boolean');
    this.#createSchema = createSchema ?? true;
    this.#sql = statements(this.#names, this.#durable);
  }

  /**
   * Connects, then creates or migrates the tables if needed (once per store; concurrent starts on an
   * empty database are serialised); with `createSchema: false` it only checks that they are there
   * (`reason` `'schema-missing'` or `'schema-version'` otherwise). Rejects with a
   * {@link StoreError}: `transient` when the database could not be reached, otherwise it says what
   * to fix (credentials, a newer schema...). Optional: every other method prepares the store on
   * first use.
   */
  async ready(): Promise<void> {
    await this.#db();
  }

  async #db(): Promise<PgPoolLike> {
    if (this.#closing !== undefined) throw new StoreError('PostgresTokenStore is closed');
    this.#pool ??= this.#createPool().catch((error: unknown) => {
      this.#pool = undefined;
      throw error;
    });
    const pool = await this.#pool;
    // A failed preparation (the database was down) is retried by the next call.
    const prepare = this.#createSchema ? migrate : checkSchema;
    this.#ready ??= this.#room.run(() => prepare(pool, this.#names)).catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    await this.#ready;
    return pool;
  }

  async #createPool(): Promise<PgPoolLike> {
    if (this.#given !== undefined) return this.#given;
    const { Pool } = await loadDriver();
    const pool = new Pool({ ...this.#config });
    // node-postgres emits 'error' when an idle connection dies (a database restart): without a
    // listener that would end the process. The pool drops the connection; the next query opens another.
    pool.on('error', () => undefined);
    return pool;
  }

  async #query(operation: string, memberId: string | undefined, sql: string, values: unknown[]): Promise<PgQueryResult> {
    const pool = await this.#db();
    try {
      return await this.#room.run(() => pool.query(sql, values));
    } catch (error) {
      throw storeFailure(error, operation, memberId);
    }
  }

  /** Reads one chain's record (a `memberId` key names the portal's chain); `undefined` when there is none or it was deleted. */
  async get(key: ChainKey): Promise<PortalRecord | undefined> {
    const { memberId, chain } = this.#key(key);
    const { rows } = await this.#query('read', memberId, this.#sql.get, [memberId, chain]);
    return rows[0] === undefined ? undefined : rowToRecord(rows[0]);
  }

  /** Creates or replaces a chain's record unconditionally; the version becomes the previous one (a tombstone's included) + 1. */
  async upsert(record: PortalRecordInput): Promise<PortalRecord> {
    const input = checkRecordInput(record);
    checkStorable('record.', input);
    const values = [this.#names.channel, input.memberId, input.chain, ...DATA_FIELDS.map((field) => param(input[field]))];
    const { rows } = await this.#query('write', input.memberId, this.#sql.upsert, values);
    if (rows[0] === undefined) throw versionExhausted(input.memberId);
    return rowToRecord(rows[0]);
  }

  /** Conditional write: applies `patch` only while the stored version is `expectedVersion` (compared inside the UPDATE), and increments it. A conflict returns what is stored now. */
  async update(key: ChainKey, expectedVersion: number, patch: PortalRecordPatch): Promise<ConditionalWriteResult> {
    const { memberId, chain } = this.#key(key);
    checkExpectedVersion(expectedVersion);
    const changes = checkPatch(patch);
    checkStorable('patch.', changes);
    const fields = DATA_FIELDS.filter((field) => Object.hasOwn(changes, field));
    const set = ['version = r.version + 1', ...fields.map((field, i) => `${COLUMNS[field]} = $${i + 5}`)];
    const sql = `WITH w AS (
        UPDATE ${this.#names.records} AS r SET ${set.join(', ')}
        WHERE r.member_id = $2 AND r.chain = $3 AND r.version = $4 AND NOT r.deleted AND r.version < ${MAX_VERSION}
        RETURNING r.*)
      SELECT w.*, ${NOTIFY('w')}${durableTail(this.#durable)} FROM w`;
    const values = [this.#names.channel, memberId, chain, expectedVersion, ...fields.map((field) => param(changes[field]))];
    const { rows } = await this.#query('write', memberId, sql, values);
    if (rows[0] !== undefined) return { ok: true, record: rowToRecord(rows[0]) };
    const current = await this.get({ memberId, chain });
    if (current?.version === expectedVersion && expectedVersion >= MAX_VERSION) throw versionExhausted(memberId);
    return { ok: false, current };
  }

  /** Deletes one chain: the row becomes a tombstone holding only its version. `true` if a record was deleted. */
  async delete(key: ChainKey): Promise<boolean> {
    const { memberId, chain } = this.#key(key);
    const { rows } = await this.#query('delete', memberId, this.#sql.delete, [this.#names.channel, memberId, chain]);
    return rows.length > 0;
  }

  /** Deletes every chain of a portal, as an uninstall does; returns how many records were deleted. */
  async deletePortal(memberId: string): Promise<number> {
    checkMemberId(memberId);
    checkStorable('', { memberId });
    const { rows } = await this.#query('delete', memberId, this.#sql.deletePortal, [this.#names.channel, memberId]);
    return Number(rows[0]?.['n'] ?? 0);
  }

  /**
   * Tries once, without waiting, to take one chain's lock for `ttlMs`; `undefined` while another
   * live lease holds it. A lapsed lease is taken over. The lease is a row in `<prefix>_locks`
   * holding a random token and an expiry by the database's clock; `release` and `renew` act only
   * while that token is still the row's.
   */
  async tryLock(key: ChainKey, ttlMs: number): Promise<StoreLease | undefined> {
    const { memberId, chain } = this.#key(key);
    checkTtlMs(ttlMs);
    // Why a lease row and not pg_advisory_lock: an advisory lock belongs to a database session, but
    // the store's queries run on whichever pooled connection is free, so the statement that unlocks
    // could run on another session than the one that locked; pinning a connection per held lock
    // would starve the pool. And a holder that hangs (paused, partitioned) while its connection
    // stays open would keep a session lock forever; a lease row frees the chain by time alone, and
    // the conditional write fences a holder that overran it.
    const token = randomUUID();
    const { rows } = await this.#query('lock', memberId, this.#sql.lock, [memberId, chain, token, Math.ceil(ttlMs)]);
    if (rows[0] === undefined) return undefined;
    return this.#lease(memberId, chain, token, Number(rows[0]['expires_at']));
  }

  /**
   * {@link tryLock} and {@link get} in one statement: the lease row as `tryLock` takes it, and the
   * chain's newest committed record, read after the lease was taken. See
   * {@link TokenStore.tryLockAndGet}.
   */
  async tryLockAndGet(key: ChainKey, ttlMs: number): Promise<LockedRead> {
    const { memberId, chain } = this.#key(key);
    checkTtlMs(ttlMs);
    const token = randomUUID();
    const { rows } = await this.#query('lock', memberId, this.#sql.lockAndGet, [memberId, chain, token, Math.ceil(ttlMs)]);
    const row = rows[0];
    if (row === undefined) throw new StoreError('PostgreSQL answered a lock and read with no row', { memberId });
    const leaseExpiresAt = row['lease_expires_at'];
    return {
      lease: leaseExpiresAt === null || leaseExpiresAt === undefined ? undefined : this.#lease(memberId, chain, token, Number(leaseExpiresAt)),
      record: row['version'] === null || row['version'] === undefined ? undefined : rowToRecord(row),
    };
  }

  /** The lease of the lock row this store took with `token`. */
  #lease(memberId: string, chain: string, token: string, expiresAt: number): StoreLease {
    return {
      token,
      expiresAt,
      release: async () => {
        await this.#query('unlock', memberId, this.#sql.release, [memberId, chain, token]);
      },
      renew: async (ttl: number) => {
        checkTtlMs(ttl);
        const renewed = await this.#query('renew the lock of', memberId, this.#sql.renew, [memberId, chain, token, Math.ceil(ttl)]);
        return renewed.rows.length > 0;
      },
    };
  }

  /**
   * One GCRA step of `key`'s budget in one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`
   * statement, timed by the database's clock, so workers with skewed clocks share one budget.
   * See {@link TokenStore.acquire}.
   */
  async acquire(key: string, spec: BudgetSpec): Promise<BudgetGrant> {
    checkBudgetKey(key);
    const step = budgetStep(spec);
    const { rows } = await this.#query('take a budget step for', undefined, this.#sql.acquire, [
      key,
      step.intervalMs,
      step.cost,
      step.spanMs,
      step.maxWaitMs,
      step.floorMs,
    ]);
    const row = rows[0] as { wait_ms?: unknown; granted?: unknown } | undefined;
    if (row === undefined || typeof row.granted !== 'boolean') throw new StoreError('PostgreSQL answered a budget step with no row');
    return { waitMs: Number(row.wait_ms), granted: row.granted };
  }

  /** Lists portal chains in ascending `memberId` order, one page (a LIMIT) at a time, continuing `after` a memberId. */
  async list(options?: PortalListOptions): Promise<PortalListPage> {
    const { after, limit } = checkListOptions(options);
    if (after !== undefined) checkStorable('options.', { after });
    // One row more than the page tells whether another page follows, without counting.
    const sql = `SELECT * FROM ${this.#names.records}
      WHERE chain = 'portal' AND NOT deleted AND ($1::text IS NULL OR member_id > $1::text COLLATE "C")
      ORDER BY member_id LIMIT $2`;
    const { rows } = await this.#query('list portals', undefined, sql, [after ?? null, limit + 1]);
    const records = rows.slice(0, limit).map(rowToRecord);
    return { records, next: rows.length > limit ? records.at(-1)?.memberId : undefined };
  }

  /** Lists every chain, in `memberId` then `chain` order; see `TokenStore.listAll`. */
  async listAll(options?: PortalListOptions): Promise<PortalListPage> {
    const { limit } = checkListOptions(options);
    const cursor = readChainCursor(options?.after);
    if (cursor !== undefined) checkStorable('options.', { after: cursor.memberId });
    const sql = `SELECT * FROM ${this.#names.records}
      WHERE NOT deleted AND ($1::text IS NULL OR (member_id COLLATE "C", chain COLLATE "C") > ($1::text COLLATE "C", $2::text COLLATE "C"))
      ORDER BY member_id COLLATE "C", chain COLLATE "C" LIMIT $3`;
    const { rows } = await this.#query('list every chain', undefined, sql, [cursor?.memberId ?? null, cursor?.chain ?? '', limit + 1]);
    const records = rows.slice(0, limit).map(rowToRecord);
    const last = records.at(-1);
    return { records, next: rows.length > limit && last !== undefined ? chainCursor(last) : undefined };
  }

  /** Lists the user chains (every chain but `'portal'`) of one portal, in ascending `chain` order. */
  async listChains(memberId: string): Promise<readonly PortalRecord[]> {
    checkMemberId(memberId);
    checkStorable('', { memberId });
    const sql = `SELECT * FROM ${this.#names.records}
      WHERE member_id = $1 AND chain <> 'portal' AND NOT deleted ORDER BY chain`;
    const { rows } = await this.#query('list the chains of', memberId, sql, [memberId]);
    return rows.map(rowToRecord);
  }

  /**
   * Subscribes to every later write, by any process sharing the tables; rejects with a
   * {@link StoreError} when the feed cannot be set up. Each subscription holds one dedicated connection with `LISTEN <prefix>_changes`. When it drops,
   * the listener hears `onStatus('lost')`; the feed reconnects with back-off and reports
   * `onStatus('restored')`.
   */
  async subscribe(listener: StoreChangeListener): Promise<StoreSubscription> {
    const given: unknown = listener;
    if (given === null || typeof given !== 'object' || typeof listener.onChange !== 'function') {
      throw new TypeError('listener must be an object with an onChange function');
    }
    if (listener.onStatus !== undefined && typeof listener.onStatus !== 'function') {
      throw new TypeError('listener.onStatus must be a function');
    }
    await this.#db();
    const config = this.#clientConfig();
    const { Client } = await loadDriver();
    const feed = new PgFeed(() => new Client(config), this.#names.channel, this.#names.channelIdentifier, listener, {
      send: async (payload) => {
        await this.#query('probe its change feed', undefined, 'SELECT pg_notify($1, $2)', [this.#names.channel, payload]);
      },
      timeoutMs: this.#probeTimeoutMs,
      intervalMs: this.#probeIntervalMs,
      onDeaf: () => this.#deaf(),
    });
    await this.#room.run(() => feed.start());
    this.#feeds.add(feed);
    return {
      close: async () => {
        this.#feeds.delete(feed);
        await feed.close();
      },
    };
  }

  /** A probe did not come back: the feed hears nothing (a transaction pooler between it and PostgreSQL). Warns once. */
  #deaf(): void {
    if (this.#warnedDeaf) return;
    this.#warnedDeaf = true;
    this.#logger.warn(
      { timeoutMs: this.#probeTimeoutMs, listenConnectionString: this.#listenUrl !== undefined },
      'the PostgreSQL change feed hears nothing: a notification it sent did not come back. LISTEN cannot work ' +
        'through a transaction-pooling PgBouncer or hosted pooler; pass listenConnectionString (a direct or ' +
        'session-mode connection to PostgreSQL) for the feed. Until then cached clients are re-read before reuse.',
    );
  }

  #clientConfig(): Record<string, unknown> {
    if (this.#listenUrl !== undefined) {
      return { connectionString: this.#listenUrl, keepAlive: true, connectionTimeoutMillis: this.#config?.['connectionTimeoutMillis'] ?? 10_000 };
    }
    if (this.#config !== undefined) return { connectionString: this.#config['connectionString'], keepAlive: true, connectionTimeoutMillis: this.#config['connectionTimeoutMillis'] };
    const options = this.#given?.options as Record<string, unknown> | undefined;
    if (options === undefined || options === null) throw noFeedConfig();
    // pg-pool keeps the password as a non-enumerable property, so a spread alone would drop it.
    return { ...options, password: options['password'], keepAlive: true };
  }

  /**
   * Ends the change feeds and, for a store built from a connection string, its pool. A pool passed
   * in stays open. Idempotent; later calls of other methods reject.
   */
  async close(): Promise<void> {
    this.#closing ??= (async () => {
      const feeds = [...this.#feeds];
      this.#feeds.clear();
      await Promise.all(feeds.map((feed) => feed.close()));
      const pool = this.#given === undefined ? this.#pool : undefined;
      if (pool !== undefined) await (await pool.catch(() => undefined))?.end().catch(() => undefined);
    })();
    return this.#closing;
  }

  #key(key: ChainKey): ResolvedKey {
    const resolved = resolveKey(key);
    checkStorable('key.', { memberId: resolved.memberId });
    return resolved;
  }
}

function versionExhausted(memberId: string): StoreError {
  return new StoreError(`Version of portal ${memberId} cannot be incremented past Number.MAX_SAFE_INTEGER`, { memberId });
}

