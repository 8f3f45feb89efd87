// Key names and the record's hash encoding for the Redis store. Each field is stored as its JSON text
// under its own name, so a conditional write patches fields in Lua without decoding numbers there.

import { createHash } from 'node:crypto';
import { StoreError } from '../../errors.js';
import { isChainId, readStoredRecord } from '../record-checks.js';
import type { ChainId, PortalRecord, StoreChange } from '../token-store.js';

const PREFIX = /^[A-Za-z0-9_.:-]{1,100}$/;

/** Checks the `keyPrefix` option. */
export function checkKeyPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new TypeError('options.keyPrefix must be 1 to 100 characters from A-Z a-z 0-9 _ . : -');
  }
  return prefix;
}

/** How many index buckets (hash slots) a cluster layout spreads the portals over. Part of the layout: never change it. */
export const CLUSTER_BUCKETS = 64;

/** The bucket of a portal (or of a budget key) on a cluster: the first 4 bytes of its SHA-1, modulo {@link CLUSTER_BUCKETS}. */
export function bucketOf(name: string): number {
  return createHash('sha1').update(name, 'utf8').digest().readUInt32BE(0) % CLUSTER_BUCKETS;
}

/**
 * The keys of one hash slot: on a single Redis the whole prefix is one "slot"; on a cluster each
 * bucket's keys share the hash tag `{<prefix>:<bucket>}`, so a script only ever touches one slot.
 */
export class SlotKeys {
  /** The layout marker the write scripts check (the store's own on a single Redis, the bucket's on a cluster). */
  readonly layout: string;
  /** This slot's sorted set of portals (member ids, scores 0). */
  readonly portals: string;
  readonly #stem: string;

  constructor(stem: string, layout: string) {
    this.#stem = stem;
    this.layout = layout;
    this.portals = `${stem}portals`;
  }

  /** The stem of a portal's record keys; a record key is the stem followed by its chain. */
  recordStem(memberId: string): string {
    return `${this.#stem}rec:${memberId}:`;
  }
  record(memberId: string, chain: string): string {
    return this.recordStem(memberId) + chain;
  }
  /** The portal's tombstones: chain → last version of a deleted record. */
  tombstones(memberId: string): string {
    return `${this.#stem}tomb:${memberId}`;
  }
  /** The portal's user chains, a sorted set with every score 0 (lexicographic order). */
  chains(memberId: string): string {
    return `${this.#stem}chains:${memberId}`;
  }
  lock(memberId: string, chain: ChainId): string {
    return `${this.#stem}lock:${memberId}:${chain}`;
  }
  /** A request budget's arrival time (expires when it no longer matters). Additive to layout 1: older releases never read it. */
  budget(key: string): string {
    return `${this.#stem}budget:${key}`;
  }
}

/**
 * Every key (and the channel) of one store, derived from its prefix. Layout 1 (a single Redis):
 * `<prefix>:rec:<memberId>:<chain>`, ...; the cluster layout puts the same names after a hash tag:
 * `<prefix>:{<prefix>:<bucket>}:rec:<memberId>:<chain>`, the bucket derived from the member id.
 */
export class Keys {
  /** The store's layout marker (`ready()` records it). */
  readonly layout: string;
  /** The change channel (plain pub/sub: a cluster forwards it to every node). */
  readonly channel: string;
  /** Whether this is the cluster layout. */
  readonly cluster: boolean;
  readonly #slots: readonly SlotKeys[];

  constructor(prefix: string, cluster = false) {
    this.cluster = cluster;
    this.layout = `${prefix}:layout`;
    this.channel = `${prefix}:changes`;
    this.#slots = cluster
      ? Array.from({ length: CLUSTER_BUCKETS }, (_, bucket) => {
          const stem = `${prefix}:{${prefix}:${bucket}}:`;
          return new SlotKeys(stem, `${stem}layout`);
        })
      : [new SlotKeys(`${prefix}:`, this.layout)];
  }

  /** The slot holding every key of `memberId`'s chains (record, tombstones, chains index, locks, its entry in the portal index). */
  of(memberId: string): SlotKeys {
    return this.#slots.length === 1 ? (this.#slots[0] as SlotKeys) : (this.#slots[bucketOf(memberId)] as SlotKeys);
  }

  /** Every slot that holds a part of the portal index, in bucket order. */
  get slots(): readonly SlotKeys[] {
    return this.#slots;
  }
}

/** The record's fields (without `version`) as `field, JSON, field, JSON, ...` for HSET. */
export function encodeFields(fields: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (name === 'version' || value === undefined) continue;
    out.push(name, JSON.stringify(value));
  }
  return out;
}

/** HGETALL's reply as pairs, whichever reply mapping the client uses. */
function pairs(reply: unknown): [string, unknown][] {
  if (Array.isArray(reply)) {
    const out: [string, unknown][] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) out.push([String(reply[i]), reply[i + 1]]);
    return out;
  }
  if (reply instanceof Map) return [...(reply as Map<unknown, unknown>).entries()].map(([k, v]) => [String(k), v]);
  if (typeof reply === 'object' && reply !== null) return Object.entries(reply);
  return [];
}

/**
 * Decodes a record hash read for (`memberId`, `chain`): `undefined` when empty; a StoreError naming
 * the bad field (never its value) when the hash is not a valid record of that key.
 */
export function decodeRecord(reply: unknown, memberId: string, chain: ChainId): PortalRecord | undefined {
  const entries = pairs(reply);
  if (entries.length === 0) return undefined;
  const raw: Record<string, unknown> = {};
  for (const [name, value] of entries) {
    const text = Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
    if (name === 'version') {
      raw[name] = /^[0-9]{1,16}$/.test(text) ? Number(text) : NaN;
      continue;
    }
    try {
      raw[name] = JSON.parse(text);
    } catch {
      throw corrupt(memberId, chain, name);
    }
  }
  const checked = readStoredRecord(raw);
  if ('badField' in checked) throw corrupt(memberId, chain, checked.badField);
  if (checked.record.memberId !== memberId || checked.record.chain !== chain) throw corrupt(memberId, chain, 'memberId/chain do not match the key');
  return checked.record;
}

function corrupt(memberId: string, chain: ChainId, field: string): StoreError {
  return new StoreError(`Stored record of portal ${memberId} (${chain}) is corrupt (bad field ${field})`, { memberId });
}

/** Parses a change published by a write script; `undefined` for anything else on the channel. */
export function decodeChange(message: unknown): StoreChange | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.isBuffer(message) ? message.toString('utf8') : String(message));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { memberId, chain, version, deleted } = value as Record<string, unknown>;
  if (typeof memberId !== 'string' || typeof deleted !== 'boolean') return undefined;
  if (chain !== null && !isChainId(chain)) return undefined;
  if (version !== null && !Number.isSafeInteger(version)) return undefined;
  return {
    memberId,
    chain: chain === null ? undefined : chain,
    version: version === null ? undefined : (version as number),
    deleted,
  };
}

/** An integer reply as a number, also from a client created with ioredis's `stringNumbers`; NaN otherwise. */
export function int(reply: unknown): number {
  return typeof reply === 'string' && /^[0-9]{1,16}$/.test(reply) ? Number(reply) : typeof reply === 'number' ? reply : Number.NaN;
}
