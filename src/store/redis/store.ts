// RedisTokenStore: the TokenStore contract on Redis. One hash per chain, indexes in sorted sets, every
// write one Lua script that also publishes the change; locks are SET NX PX leases with random tokens.

import { randomBytes } from 'node:crypto';
import { StoreError } from '../../errors.js';
import { budgetStep, checkBudgetKey } from '../budget-math.js';
import {
  checkExpectedVersion,
  checkListOptions,
  checkMemberId,
  checkPatch,
  checkRecordInput,
  checkTtlMs,
  resolveKey,
} from '../record-checks.js';
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
import { decodeRecord, encodeFields, int, Keys } from './codec.js';
import type { RedisClientLike } from './connection.js';
import { openFeed, openRotatingFeed } from './feed.js';
import { checkOptions, type RedisTokenStoreOptions } from './options.js';
import * as S from './scripts.js';
import { closedError, RedisSession, type Connection } from './session.js';

/** How often a script given a portal's chains is tried again when the chains index changed meanwhile. */
const STALE_ATTEMPTS = 5;

function isStale(reply: unknown): boolean {
  return String(reply) === String(S.STALE); // also from a client with ioredis's stringNumbers
}

/**
 * A {@link TokenStore} on Redis, shared by every process that opens it with the same Redis and
 * `keyPrefix`: records, conditional writes, per-chain locks with leases, listing and a change feed
 * over pub/sub (`capabilities.changes`).
 *
 * Layout (version 1 on a single Redis, recorded under `<prefix>:layout`): one hash per chain
 * (`<prefix>:rec:<memberId>:<chain>`, each field's JSON plus `version`), the last versions of
 * deleted chains in `<prefix>:tomb:<memberId>`, the portals in the sorted set `<prefix>:portals`
 * and each portal's user chains in `<prefix>:chains:<memberId>` (scores 0, lexicographic order:
 * `list` pages by UTF-8 byte order, which equals `memberId` order for the ASCII ids Bitrix24 uses).
 * On a Redis Cluster (`nodes`, or a `Cluster` as `client`) the layout is `cluster-1`: the same
 * names behind the hash tag of the portal's bucket (`<prefix>:{<prefix>:<0..63>}:rec:...`), so every
 * key of a portal, and its entry in its bucket's portal index, is in one hash slot; `list` merges
 * the 64 buckets' indexes. Each layout refuses the other's keys.
 * Every write (upsert, update, delete, deletePortal) is one Lua script on one slot that is given
 * every key it touches, checks the version, writes, maintains the indexes and publishes
 * `{ memberId, chain, version, deleted }` (never a token) on `<prefix>:changes`.
 *
 * Replicas: where the primary (every primary, on a cluster) has a replica connected when the store
 * gets ready, each chain write is acknowledged only once a replica has it (`WAIT`); see
 * the `replicas` option and `RedisReplicationError`.
 *
 * Locks: `SET <prefix>:lock:<memberId>:<chain> <random token> NX PX ttl`; release and renew run a
 * script that acts only while the key still holds the lease's token. `expiresAt` is measured from
 * just before the SET is sent, so it is never later than Redis's own expiry. The lock is advisory:
 * a holder that overran its lease is fenced by the conditional write, which refuses its stale version.
 *
 * Change feed: each subscription has its own subscriber connection (on a cluster, to one node:
 * a cluster forwards every PUBLISH to every node). When it drops, the listener gets
 * `onStatus('lost')`; once it has reconnected (on a cluster, to the next node) and Redis
 * acknowledged the new SUBSCRIBE, `onStatus('restored')` (changes in between are not replayed:
 * re-read what you cached).
 *
 * Failures: a connection refused, lost or timed out, or a Redis still loading, rejects with a
 * {@link StoreError} whose `transient` is `true`; no call waits longer than `timeoutMs`. A write
 * that timed out may still have been applied: re-read before retrying.
 *
 * @remarks
 * Redis must persist (AOF with `appendfsync everysec` or stricter, or RDB snapshots you can afford
 * to lose the tail of): a Redis that restarts empty loses every portal's single-use refresh token,
 * and those portals must reinstall the app. Runs on a single Redis primary (with Sentinel if you
 * like) or a Redis Cluster; see the guide's Redis topologies (docs/topologies.md).
 *
 * @example
 * ```ts
 * import { RedisTokenStore } from 'b24-portal-tokens/stores/redis';
 * const store = new RedisTokenStore({ url: process.env.REDIS_URL!, keyPrefix: 'myapp' });
 * await store.ready();
 * const pool = new PortalClientPool({ store, clientId, clientSecret });
 * ```
 */
export class RedisTokenStore implements TokenStore {
  /** Locks, listing and the change feed work, and are shared with every process on the same Redis and prefix. */
  readonly capabilities: StoreCapabilities = { lock: true, crossProcess: true, list: true, changes: true, budget: true };
  /** The prefix of every key this store reads and writes. */
  readonly keyPrefix: string;

  readonly #keys: Keys;
  readonly #timeoutMs: number;
  readonly #session: RedisSession;
  readonly #feeds = new Set<StoreSubscription>();
  readonly #layout: string;

  /** Checks the options; nothing connects until the first call. */
  constructor(options: RedisTokenStoreOptions) {
    const checked = checkOptions(options);
    this.keyPrefix = checked.keyPrefix;
    this.#timeoutMs = checked.timeoutMs;
    this.#keys = new Keys(this.keyPrefix, checked.nodes !== undefined || checked.client?.isCluster === true);
    this.#session = new RedisSession(checked, this.#keys);
    this.#layout = this.#session.layoutVersion;
  }

  /**
   * Checks that Redis answers and that the keys under `keyPrefix` use this release's layout,
   * recording it on an empty prefix (atomically: safe when many processes start at once).
   * Rejects with a transient {@link StoreError} when Redis cannot be reached in time, and a
   * permanent one for refused credentials or keys of another layout.
   */
  async ready(): Promise<void> {
    await this.#prepare();
  }

  /** Reads one chain's record (one HGETALL); `undefined` when none is stored. See `TokenStore.get`. */
  async get(key: ChainKey): Promise<PortalRecord | undefined> {
    const { memberId, chain } = resolveKey(key);
    const reply = await this.#command('get', memberId, (c) => c.call('HGETALL', this.#keys.of(memberId).record(memberId, chain)));
    return decodeRecord(reply, memberId, chain);
  }

  /** Creates or replaces a chain's record in one script: version + 1, indexes updated, the change published. See `TokenStore.upsert`. */
  async upsert(record: PortalRecordInput): Promise<PortalRecord> {
    const input = checkRecordInput(record);
    const { memberId, chain } = input;
    const k = this.#keys.of(memberId);
    const version = await this.#write('upsert', memberId, S.UPSERT,
      [k.layout, k.record(memberId, chain), k.tombstones(memberId), k.portals, k.chains(memberId)],
      [this.#layout, memberId, chain, this.#keys.channel, ...encodeFields(input)], () => true);
    if (!Number.isSafeInteger(int(version))) throw new StoreError(`Redis answered upsert of portal ${memberId} with no version`, { memberId });
    return { ...input, version: int(version) };
  }

  /**
   * Conditional write in one script: applied only while the stored version is `expectedVersion`; a
   * conflict returns what is stored. Where chain writes wait for replicas, an applied write the
   * replicas did not confirm in time rejects with a `RedisReplicationError` (it stays
   * applied: the same call again meets a conflict whose `current` is that record). See `TokenStore.update`.
   */
  async update(key: ChainKey, expectedVersion: number, patch: PortalRecordPatch): Promise<ConditionalWriteResult> {
    const { memberId, chain } = resolveKey(key);
    checkExpectedVersion(expectedVersion);
    const changes = checkPatch(patch);
    const k = this.#keys.of(memberId);
    const reply = await this.#write('update', memberId, S.UPDATE, [k.layout, k.record(memberId, chain)],
      [this.#layout, String(expectedVersion), memberId, chain, this.#keys.channel, ...encodeFields(changes)],
      (written) => Array.isArray(written) && int(written[0]) === 1);
    const [applied, stored] = Array.isArray(reply) ? (reply as [unknown, unknown]) : [undefined, undefined];
    const record = decodeRecord(stored, memberId, chain);
    if (int(applied) === 1 && record !== undefined) return { ok: true, record };
    return { ok: false, current: record };
  }

  /** Deletes one chain in one script, keeping its last version as a tombstone so versions never repeat. See `TokenStore.delete`. */
  async delete(key: ChainKey): Promise<boolean> {
    const { memberId, chain } = resolveKey(key);
    const k = this.#keys.of(memberId);
    const deleted = await this.#write('delete', memberId, S.DELETE,
      [k.layout, k.record(memberId, chain), k.tombstones(memberId), k.portals, k.chains(memberId)],
      [this.#layout, memberId, chain, this.#keys.channel], (reply) => int(reply) === 1);
    return int(deleted) === 1;
  }

  /**
   * Deletes every chain of a portal in one script, given the record keys read from the portal's
   * chains index just before (read again if it changed in between); versions continue on a
   * re-create. Returns how many were deleted. See `TokenStore.deletePortal`.
   */
  async deletePortal(memberId: string): Promise<number> {
    checkMemberId(memberId);
    const k = this.#keys.of(memberId);
    const count = await this.#withChains('deletePortal', memberId, (chains) =>
      this.#write('deletePortal', memberId, S.DELETE_PORTAL,
        [k.layout, k.tombstones(memberId), k.portals, k.chains(memberId), k.record(memberId, 'portal'), ...chains.map((chain) => k.record(memberId, chain))],
        [this.#layout, memberId, this.#keys.channel, ...chains], (reply) => int(reply) > 0));
    if (!Number.isSafeInteger(int(count))) throw new StoreError(`Redis answered deletePortal of portal ${memberId} with no count`, { memberId });
    return int(count);
  }

  /**
   * One GCRA step of `key`'s budget in one Lua script, timed by Redis's `TIME` (one clock for every
   * worker); the arrival time lives in `<prefix>:budget:<key>` with a PEXPIRE. See `TokenStore.acquire`.
   */
  async acquire(key: string, spec: BudgetSpec): Promise<BudgetGrant> {
    checkBudgetKey(key);
    const step = budgetStep(spec);
    const slot = this.#keys.of(key);
    const reply = await this.#script('acquire', undefined, S.ACQUIRE, [slot.layout, slot.budget(key)], [
      this.#layout,
      String(step.intervalMs),
      String(step.cost),
      String(step.spanMs),
      String(step.maxWaitMs),
      String(step.floorMs),
    ]);
    const [wait, granted] = Array.isArray(reply) ? (reply as [unknown, unknown]) : [undefined, undefined];
    const waitMs = Number(wait);
    if (!Number.isFinite(waitMs)) throw new StoreError('Redis answered a budget step with no wait');
    return { waitMs, granted: int(granted) === 1 };
  }

  /** Tries once to take one chain's lease (`SET NX PX` with a random fencing token); `undefined` when another live lease holds it. See `TokenStore.tryLock`. */
  async tryLock(key: ChainKey, ttlMs: number): Promise<StoreLease | undefined> {
    const { memberId, chain } = resolveKey(key);
    checkTtlMs(ttlMs);
    const lockKey = this.#keys.of(memberId).lock(memberId, chain);
    const token = randomBytes(16).toString('hex');
    const ttl = Math.max(1, Math.ceil(ttlMs));
    let started = 0;
    const reply = await this.#command('tryLock', memberId, (c) => {
      started = Date.now(); // after connecting: the lease starts when the SET leaves, not before
      return c.call('SET', lockKey, token, 'NX', 'PX', ttl);
    });
    if (reply !== 'OK') return undefined;
    return this.#lease(memberId, lockKey, token, started + ttl);
  }

  /**
   * {@link tryLock} and {@link get} in one script (`SET NX PX`, then `HGETALL`, on the portal's slot).
   * See `TokenStore.tryLockAndGet`.
   */
  async tryLockAndGet(key: ChainKey, ttlMs: number): Promise<LockedRead> {
    const { memberId, chain } = resolveKey(key);
    checkTtlMs(ttlMs);
    const k = this.#keys.of(memberId);
    const lockKey = k.lock(memberId, chain);
    const token = randomBytes(16).toString('hex');
    const ttl = Math.max(1, Math.ceil(ttlMs));
    // Measured before the script is sent (a connection being opened first makes it earlier still):
    // never later than Redis's own expiry of the lease.
    const started = Date.now();
    const reply = await this.#script('tryLock', memberId, S.LOCK_AND_GET, [lockKey, k.record(memberId, chain)], [token, ttl]);
    const [taken, stored] = Array.isArray(reply) ? (reply as [unknown, unknown]) : [undefined, undefined];
    return { lease: int(taken) === 1 ? this.#lease(memberId, lockKey, token, started + ttl) : undefined, record: decodeRecord(stored, memberId, chain) };
  }

  /** The lease `token` holds on `lockKey`. */
  #lease(memberId: string, lockKey: string, token: string, expiresAt: number): StoreLease {
    return {
      token,
      expiresAt,
      release: async () => {
        await this.#script('release', memberId, S.UNLOCK, [lockKey], [token]);
      },
      renew: async (nextTtlMs: number) => {
        checkTtlMs(nextTtlMs);
        const renewed = await this.#script('renew', memberId, S.RENEW, [lockKey], [token, Math.max(1, Math.ceil(nextTtlMs))]);
        return int(renewed) === 1;
      },
    };
  }

  /**
   * Lists portal chains in `memberId` order (UTF-8 byte order), a page at a time: the next ids of
   * every index slot (ZRANGEBYLEX; one slot on a single Redis, one per bucket on a cluster) merged,
   * then the page's records read one script per slot. A page is not one snapshot: a portal deleted
   * between the two steps is left out. See `TokenStore.list`.
   */
  async list(options?: PortalListOptions): Promise<PortalListPage> {
    const { after, limit } = checkListOptions(options);
    if (after !== undefined && !after.isWellFormed()) throw new TypeError('options.after must be well-formed Unicode');
    const lower = after === undefined ? '-' : `(${after}`;
    const slots = this.#keys.slots;
    const found = await Promise.all(slots.map(async (slot, index) => {
      const ids = await this.#command('list', undefined, (c) => c.call('ZRANGEBYLEX', slot.portals, lower, '+', 'LIMIT', 0, limit + 1));
      return (Array.isArray(ids) ? ids : []).map((id) => ({ id: String(id), index }));
    }));
    const merged = found.flat().sort((x, y) => Buffer.compare(Buffer.from(x.id, 'utf8'), Buffer.from(y.id, 'utf8')));
    const page = merged.slice(0, limit);
    const bySlot = new Map<number, string[]>();
    for (const { id, index } of page) bySlot.set(index, [...(bySlot.get(index) ?? []), id]);
    const read = new Map<string, PortalRecord>();
    await Promise.all([...bySlot].map(async ([index, ids]) => {
      const slot = slots[index] as (typeof slots)[number];
      const reply = await this.#script('list', undefined, S.READ_RECORDS, ids.map((id) => slot.record(id, 'portal')), []);
      const hashes = Array.isArray(reply) ? reply : [];
      ids.forEach((id, i) => {
        const record = decodeRecord(hashes[i], id, 'portal');
        if (record !== undefined) read.set(id, record);
      });
    }));
    const records = page.flatMap(({ id }) => read.get(id) ?? []);
    return { records, next: merged.length > limit ? page.at(-1)?.id : undefined };
  }

  /** Lists one portal's user chains in chain order (the chains index, then their records in one script). See `TokenStore.listChains`. */
  async listChains(memberId: string): Promise<readonly PortalRecord[]> {
    checkMemberId(memberId);
    const k = this.#keys.of(memberId);
    const records: PortalRecord[] = [];
    await this.#withChains('listChains', memberId, async (chains) => {
      const reply = await this.#script('listChains', memberId, S.READ_CHAINS, [k.chains(memberId), ...chains.map((chain) => k.record(memberId, chain))], chains);
      if (isStale(reply)) return reply;
      const hashes = Array.isArray(reply) ? reply : [];
      chains.forEach((chain, i) => {
        const record = decodeRecord(hashes[i], memberId, resolveKey({ memberId, chain }).chain);
        if (record !== undefined) records.push(record);
      });
      return reply;
    });
    return records;
  }

  /**
   * Reads the portal's chains index and runs `step` with its user chains; again (a few times) when
   * `step` answers STALE because the index changed in between.
   */
  async #withChains(operation: string, memberId: string, step: (chains: string[]) => Promise<unknown>): Promise<unknown> {
    const index = this.#keys.of(memberId).chains(memberId);
    for (let attempt = 0; attempt < STALE_ATTEMPTS; attempt++) {
      const chains = await this.#command(operation, memberId, (c) => c.call('ZRANGE', index, 0, -1));
      const reply = await step((Array.isArray(chains) ? chains : []).map(String));
      if (!isStale(reply)) return reply;
    }
    throw new StoreError(`The chains of portal ${memberId} kept changing during ${operation}`, { memberId, transient: true });
  }

  /** Subscribes to the change feed on a dedicated connection; reports `lost` and `restored` around reconnects. See `TokenStore.subscribe`. */
  async subscribe(listener: StoreChangeListener): Promise<StoreSubscription> {
    if (typeof listener !== 'object' || listener === null || typeof listener.onChange !== 'function') {
      throw new TypeError('listener must be an object with an onChange method');
    }
    const connection = await this.#connect();
    if (connection.cluster) await this.#prepare(); // connects the cluster, so its nodes are known
    const onClosed = (): void => {
      this.#feeds.delete(subscription);
    };
    const subscription: StoreSubscription = connection.cluster
      ? await openRotatingFeed(connection.subscriber, this.#keys.channel, listener, this.#timeoutMs, onClosed)
      : await openFeed(connection.subscriber(), this.#keys.channel, listener, this.#timeoutMs, onClosed);
    if (this.#session.closed) {
      await subscription.close();
      throw closedError();
    }
    this.#feeds.add(subscription);
    return subscription;
  }

  /**
   * Ends every change feed this store opened and, for a store made from a `url`, its connection.
   * A client passed as `client` is left open. Idempotent; later calls reject with a {@link StoreError}.
   */
  async close(): Promise<void> {
    await this.#session.close(() => Promise.all([...this.#feeds].map((feed) => feed.close())));
  }

  // The session's calls (session.ts), under the names the methods above use.
  #connect(): Promise<Connection> {
    return this.#session.connect();
  }

  #prepare(): Promise<void> {
    return this.#session.prepare();
  }

  #write(operation: string, memberId: string | undefined, script: S.Script, keys: string[], args: (string | number)[], wrote: (reply: unknown) => boolean): Promise<unknown> {
    return this.#session.write(operation, memberId, script, keys, args, wrote);
  }

  async #script(operation: string, memberId: string | undefined, script: S.Script, keys: string[], args: (string | number)[]): Promise<unknown> {
    return this.#session.script(operation, memberId, script, keys, args);
  }

  async #command(operation: string, memberId: string | undefined, run: (client: RedisClientLike) => Promise<unknown>): Promise<unknown> {
    return this.#session.command(operation, memberId, run);
  }
}
