// SqliteTokenStore: the TokenStore contract in one SQLite database through better-sqlite3. Every
// write runs in a BEGIN IMMEDIATE transaction (or is one statement), synchronously, so nothing in
// this process interleaves with it and other processes wait on SQLite's file lock.

import { randomUUID } from 'node:crypto';
import { budgetStep, checkBudgetKey, gcra } from '../budget-math.js';
import { StoreError } from '../../errors.js';
import {
  applyPatch,
  checkExpectedVersion,
  checkListOptions,
  checkMemberId,
  checkPatch,
  checkRecordInput,
  checkTtlMs,
  nextVersion,
  resolveKey,
} from '../record-checks.js';
import { chainCursor, readChainCursor } from '../record-checks.js';
import type {
  BudgetGrant,
  BudgetSpec,
  ChainId,
  ChainKey,
  ConditionalWriteResult,
  PortalListOptions,
  PortalListPage,
  PortalRecord,
  PortalRecordInput,
  PortalRecordPatch,
  StoreCapabilities,
  StoreLease,
  LockedRead,
  TokenStore,
} from '../token-store.js';
import { SqliteConnection } from './connection.js';
import type { SqliteDatabase, SqliteStatement } from './driver.js';
import { checkOptions, type SqliteTokenStoreOptions } from './options.js';
import {
  DATA_COLUMNS,
  memberKey,
  recordValues,
  rowToRecord,
  rowVersion,
  tableNames,
  type ChainRow,
  type TableNames,
} from './schema.js';
import { budgetSql, DATA_SET, TOMBSTONE_SET } from './sql.js';

/**
 * A {@link TokenStore} in a SQLite database, through the optional peer dependency `better-sqlite3`
 * (loaded only when a store opens a file). Every process that opens the same file shares the records
 * and the per-chain locks, so it coordinates refreshes across the workers of one machine.
 *
 * One table holds every chain, keyed by `memberId` and `chain`; a deleted chain stays as a tombstone
 * row holding its version and no token. Conditional writes compare the version inside a
 * `BEGIN IMMEDIATE` transaction; locks are rows with a lease and a token checked on release and
 * renewal. There is no change feed (`capabilities.changes` is false): SQLite cannot notify another
 * process of a write. Local disks only: SQLite's locking does not hold on network file systems.
 *
 * @example
 * ```ts
 * import { SqliteTokenStore } from 'b24-portal-tokens/stores/sqlite';
 * const store = new SqliteTokenStore({ filename: './tokens.sqlite' });
 * await store.ready(); // fails fast if the file cannot be used
 * ```
 */
export class SqliteTokenStore implements TokenStore {
  /** Locks and listing work, across processes that open the same file; no change feed. */
  readonly capabilities: StoreCapabilities = { lock: true, crossProcess: true, list: true, changes: false, budget: true };
  /** The database file the store opens, or `undefined` when it was given a `database`. */
  readonly filename: string | undefined;
  /** The table-name prefix. */
  readonly tablePrefix: string;

  readonly #connection: SqliteConnection;
  readonly #now: () => number;
  readonly #names: TableNames;

  /** Checks the options; opens nothing until {@link ready} or the first call. */
  constructor(options: SqliteTokenStoreOptions) {
    const { filename, database, tablePrefix, busyTimeoutMs, now, createSchema } = checkOptions(options);
    this.filename = filename;
    this.tablePrefix = tablePrefix;
    this.#connection = new SqliteConnection(database, filename, busyTimeoutMs, tablePrefix, createSchema);
    this.#now = now;
    this.#names = tableNames(tablePrefix);
  }

  /**
   * Opens the database (a file: creating it with mode 0600), creates or migrates the schema, and
   * fails fast with a {@link StoreError} saying what to fix. With `createSchema: false` it creates
   * nothing and only checks that the file and the schema are there (`reason` `'schema-missing'` or
   * `'schema-version'` otherwise). Idempotent; after a failure, the next call tries again.
   */
  async ready(): Promise<void> {
    await this.#open();
  }

  /** Reads one chain's record, or `undefined`; see {@link TokenStore.get}. */
  async get(key: ChainKey): Promise<PortalRecord | undefined> {
    const { memberId, chain } = resolveKey(key);
    const database = await this.#open();
    return this.#guard('get', memberId, () => this.#live(database, memberId, chain));
  }

  /** Creates or replaces a chain's record, continuing its version; see {@link TokenStore.upsert}. */
  async upsert(record: PortalRecordInput): Promise<PortalRecord> {
    const input = checkRecordInput(record);
    const database = await this.#open();
    return this.#write(database, 'upsert', input.memberId, () => {
      const row = this.#row(database, input.memberId, input.chain);
      const previous = row === undefined ? 0 : rowVersion(row, input.memberId);
      const stored: PortalRecord = { ...input, version: nextVersion(previous, input.memberId) };
      const c = this.#names.chains;
      this.#statement(
        database,
        `INSERT OR REPLACE INTO ${c} (member_key, chain, version, deleted, ${DATA_COLUMNS.join(', ')}) ` +
          `VALUES (?, ?, ?, 0, ${DATA_COLUMNS.map(() => '?').join(', ')})`,
      ).run(memberKey(stored.memberId), stored.chain, stored.version, ...recordValues(stored));
      return stored;
    });
  }

  /** Conditional write on `version`, in one `BEGIN IMMEDIATE` transaction; see {@link TokenStore.update}. */
  async update(key: ChainKey, expectedVersion: number, patch: PortalRecordPatch): Promise<ConditionalWriteResult> {
    const { memberId, chain } = resolveKey(key);
    checkExpectedVersion(expectedVersion);
    const changes = checkPatch(patch);
    const database = await this.#open();
    return this.#write(database, 'update', memberId, (): ConditionalWriteResult => {
      const current = this.#live(database, memberId, chain);
      if (current?.version !== expectedVersion) return { ok: false, current };
      const next = applyPatch(current, changes);
      // The version in the WHERE clause is the fence: it holds even without the transaction around it.
      const result = this.#statement(
        database,
        `UPDATE ${this.#names.chains} SET ${DATA_SET}, version = ? ` +
          'WHERE member_key = ? AND chain = ? AND version = ? AND deleted = 0',
      ).run(...recordValues(next), next.version, memberKey(memberId), chain, expectedVersion);
      if (result.changes !== 1) throw new StoreError(`Conditional write of portal ${memberId} matched no row`, { memberId });
      return { ok: true, record: next };
    });
  }

  /** Turns one chain's row into a tombstone that keeps its version; see {@link TokenStore.delete}. */
  async delete(key: ChainKey): Promise<boolean> {
    const { memberId, chain } = resolveKey(key);
    const database = await this.#open();
    return this.#write(database, 'delete', memberId, () => {
      const sql = `UPDATE ${this.#names.chains} SET ${TOMBSTONE_SET} WHERE member_key = ? AND chain = ? AND deleted = 0`;
      return this.#statement(database, sql).run(memberKey(memberId), chain).changes === 1;
    });
  }

  /** Turns every chain of a portal into a tombstone; see {@link TokenStore.deletePortal}. */
  async deletePortal(memberId: string): Promise<number> {
    checkMemberId(memberId);
    const database = await this.#open();
    return this.#write(database, 'deletePortal', memberId, () => {
      const sql = `UPDATE ${this.#names.chains} SET ${TOMBSTONE_SET} WHERE member_key = ? AND deleted = 0`;
      return this.#statement(database, sql).run(memberKey(memberId)).changes;
    });
  }

  /** Takes one chain's lock row, or a lapsed one, for `ttlMs`; see {@link TokenStore.tryLock}. */
  async tryLock(key: ChainKey, ttlMs: number): Promise<StoreLease | undefined> {
    const { memberId, chain } = resolveKey(key);
    checkTtlMs(ttlMs);
    const database = await this.#open();
    const token = randomUUID();
    const expiresAt = this.#now() + ttlMs;
    const taken = this.#write(database, 'tryLock', memberId, () => this.#takeLock(database, memberId, chain, token, expiresAt, ttlMs));
    return taken ? this.#lease(memberId, chain, token, expiresAt) : undefined;
  }

  /**
   * Takes the lock and reads the chain in one `BEGIN IMMEDIATE` transaction: no other writer can
   * come in between, so the record holds every write made before the lease. See
   * {@link TokenStore.tryLockAndGet}.
   */
  async tryLockAndGet(key: ChainKey, ttlMs: number): Promise<LockedRead> {
    const { memberId, chain } = resolveKey(key);
    checkTtlMs(ttlMs);
    const database = await this.#open();
    const token = randomUUID();
    const expiresAt = this.#now() + ttlMs;
    const { taken, record } = this.#write(database, 'tryLock', memberId, () => ({
      taken: this.#takeLock(database, memberId, chain, token, expiresAt, ttlMs),
      record: this.#live(database, memberId, chain),
    }));
    return { lease: taken ? this.#lease(memberId, chain, token, expiresAt) : undefined, record };
  }

  /** Inserts the lease, or takes over a lapsed one; a live lease makes this change nothing. Inside a write. */
  #takeLock(database: SqliteDatabase, memberId: string, chain: string, token: string, expiresAt: number, ttlMs: number): boolean {
    const sql =
      `INSERT INTO ${this.#names.locks} (member_key, chain, token, expires_at) VALUES (?, ?, ?, ?) ` +
      'ON CONFLICT (member_key, chain) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at ' +
      'WHERE expires_at <= ?';
    return this.#statement(database, sql).run(memberKey(memberId), chain, token, expiresAt, expiresAt - ttlMs).changes === 1;
  }

  /** The lease of a lock row this store took with `token`. */
  #lease(memberId: string, chain: string, token: string, expiresAt: number): StoreLease {
    const locks = this.#names.locks;
    return {
      token,
      expiresAt,
      // The token is the fence: a lapsed lease whose lock was taken over matches no row.
      release: async () => {
        const open = await this.#open();
        this.#write(open, 'release', memberId, () => {
          const sql = `DELETE FROM ${locks} WHERE member_key = ? AND chain = ? AND token = ?`;
          this.#statement(open, sql).run(memberKey(memberId), chain, token);
        });
      },
      renew: async (ttl: number) => {
        checkTtlMs(ttl);
        const open = await this.#open();
        const at = this.#now();
        return this.#write(open, 'renew', memberId, () => {
          const sql = `UPDATE ${locks} SET expires_at = ? WHERE member_key = ? AND chain = ? AND token = ? AND expires_at > ?`;
          return this.#statement(open, sql).run(at + ttl, memberKey(memberId), chain, token, at).changes === 1;
        });
      },
    };
  }

  /**
   * One GCRA step of `key`'s budget: one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` in a
   * `BEGIN IMMEDIATE` transaction, the arithmetic in SQL. Time is this machine's clock (every
   * process sharing the file runs on it). See {@link TokenStore.acquire}.
   */
  async acquire(key: string, spec: BudgetSpec): Promise<BudgetGrant> {
    checkBudgetKey(key);
    const step = budgetStep(spec);
    const database = await this.#open();
    const now = this.#now();
    // A budget need not survive a crash (a lost one is a full bucket again), and an fsync per step
    // would block this process's event loop on every request: this one transaction commits without
    // it. better-sqlite3 is synchronous, so nothing else runs on the connection in between.
    const durability = this.#statement(database, 'PRAGMA synchronous').get() as { synchronous?: unknown } | undefined;
    const restore = typeof durability?.synchronous === 'number' ? durability.synchronous : 2;
    this.#statement(database, 'PRAGMA synchronous = OFF').run();
    let row: { wait_ms: number; granted: number } | undefined;
    try {
      row = this.#write(database, 'acquire', '', () => {
      const sql = budgetSql(this.#names.budgets);
      const fresh = gcra(undefined, now, step);
      return this.#statement(database, sql).get({
        key,
        now,
        tat: fresh.tat,
        wait: fresh.grant.waitMs,
        granted: fresh.grant.granted ? 1 : 0,
        interval: step.intervalMs,
        span: step.spanMs,
        cost: step.cost,
        max: step.maxWaitMs,
        floor: step.floorMs,
      }) as { wait_ms: number; granted: number } | undefined;
      });
    } finally {
      database.prepare(`PRAGMA synchronous = ${Number.isInteger(restore) && restore >= 0 && restore <= 3 ? restore : 2}`).run();
    }
    if (row === undefined) throw new StoreError('SQLite answered a budget step with no row', { transient: false });
    return { waitMs: row.wait_ms, granted: row.granted === 1 };
  }

  /** Pages portal chains in `memberId` order with `after` and `LIMIT`; see {@link TokenStore.list}. */
  async list(options?: PortalListOptions): Promise<PortalListPage> {
    const { after, limit } = checkListOptions(options);
    const database = await this.#open();
    return this.#guard('list', undefined, () => {
      const sql =
        `SELECT * FROM ${this.#names.chains} WHERE chain = 'portal' AND deleted = 0 AND member_key > ? ` +
        'ORDER BY member_key LIMIT ?';
      const from = after === undefined ? Buffer.alloc(0) : memberKey(after);
      const rows = this.#statement(database, sql).all(from, limit + 1) as ChainRow[];
      const records = rows.slice(0, limit).map((row) => rowToRecord(row, undefined, 'portal'));
      return { records, next: rows.length > limit ? records.at(-1)?.memberId : undefined };
    });
  }

  /** Every chain, in `memberId` then `chain` order; see {@link TokenStore.listAll}. */
  async listAll(options?: PortalListOptions): Promise<PortalListPage> {
    const { limit } = checkListOptions(options);
    const cursor = readChainCursor(options?.after);
    const database = await this.#open();
    return this.#guard('listAll', undefined, () => {
      const sql =
        `SELECT * FROM ${this.#names.chains} WHERE deleted = 0 AND (member_key > ? OR (member_key = ? AND chain > ?)) ` +
        'ORDER BY member_key, chain LIMIT ?';
      const from = cursor === undefined ? Buffer.alloc(0) : memberKey(cursor.memberId);
      const rows = this.#statement(database, sql).all(from, from, cursor?.chain ?? '', limit + 1) as ChainRow[];
      const records = rows.slice(0, limit).map((row) => rowToRecord(row, undefined, undefined));
      const last = records.at(-1);
      return { records, next: rows.length > limit && last !== undefined ? chainCursor(last) : undefined };
    });
  }

  /** A portal's user chains in `chain` order; see {@link TokenStore.listChains}. */
  async listChains(memberId: string): Promise<readonly PortalRecord[]> {
    checkMemberId(memberId);
    const database = await this.#open();
    return this.#guard('listChains', memberId, () => {
      const sql =
        `SELECT * FROM ${this.#names.chains} WHERE member_key = ? AND chain <> 'portal' AND deleted = 0 ORDER BY chain`;
      const rows = this.#statement(database, sql).all(memberKey(memberId)) as ChainRow[];
      return rows.map((row) => rowToRecord(row, memberId, undefined));
    });
  }

  /**
   * Closes the database if the store opened it (a `database` passed in stays open). Later calls
   * reject with a {@link StoreError}. Idempotent.
   */
  async close(): Promise<void> {
    await this.#connection.close();
  }

  // The connection's plumbing (connection.ts), under the names the methods above use.
  #open(): Promise<SqliteDatabase> {
    return this.#connection.open();
  }

  #statement(database: SqliteDatabase, sql: string): SqliteStatement {
    return this.#connection.statement(database, sql);
  }

  #row(database: SqliteDatabase, memberId: string, chain: ChainId): ChainRow | undefined {
    const sql = `SELECT * FROM ${this.#names.chains} WHERE member_key = ? AND chain = ?`;
    return this.#statement(database, sql).get(memberKey(memberId), chain) as ChainRow | undefined;
  }

  #live(database: SqliteDatabase, memberId: string, chain: ChainId): PortalRecord | undefined {
    const row = this.#row(database, memberId, chain);
    if (row === undefined || row['deleted'] === 1) return undefined;
    return rowToRecord(row, memberId, chain);
  }

  #guard<T>(operation: string, memberId: string | undefined, body: () => T): T {
    return this.#connection.guard(operation, memberId, body);
  }

  #write<T>(database: SqliteDatabase, operation: string, memberId: string, body: () => T): T {
    return this.#connection.write(database, operation, memberId, body);
  }
}
