// The `state` of the authorization-code flow: HMAC-signed, expiring, single-use. Issuing and checking
// it is all this module does; the code exchange lives in authorize.ts.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { InvalidStateError } from '../errors.js';

/**
 * Remembers which `state` nonces were already spent, so a `state` works once. Plug in a shared one
 * (Redis `SET NX PX`, a database table) when callbacks may reach more than one process.
 */
export interface UsedStateStore {
  /**
   * Marks `nonce` as spent until `expiresAt` (unix ms; after that the state is refused as expired
   * anyway, so the entry may be forgotten). Must be atomic: of two concurrent calls with the same
   * nonce, exactly one returns `true`.
   * @returns `true` if the nonce was not spent before (the caller may proceed), `false` if it was.
   */
  markUsed(nonce: string, expiresAt: number): boolean | Promise<boolean>;
}

/**
 * Options of {@link MemoryUsedStateStore}.
 * @inline
 */
export interface MemoryUsedStateStoreOptions {
  /**
   * Most nonces remembered. Keep it above the number of authorizations started per state lifetime:
   * when full, the oldest nonce is forgotten and its state could be used a second time before it
   * expires.
   * @defaultValue 100000
   */
  readonly max?: number | undefined;
  /** The clock, unix ms; must be the flow's clock. @defaultValue `Date.now` */
  readonly now?: (() => number) | undefined;
}

/**
 * The default {@link UsedStateStore}: an LRU in this process's memory, each entry kept until its
 * state expires. Fine for one process; several processes need a shared store.
 */
export class MemoryUsedStateStore implements UsedStateStore {
  readonly #cache: LRUCache<string, true>;
  readonly #now: () => number;

  constructor(options: MemoryUsedStateStoreOptions = {}) {
    const max = options.max ?? 100_000;
    if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('options.max must be a positive integer');
    this.#now = options.now ?? Date.now;
    const now = this.#now;
    // lru-cache measures TTLs with its own clock; handing it ours keeps tests that move time honest.
    this.#cache = new LRUCache<string, true>({ max, ttlAutopurge: false, ttlResolution: 0, perf: { now } });
  }

  /** {@inheritDoc UsedStateStore.markUsed} */
  markUsed(nonce: string, expiresAt: number): boolean {
    if (this.#cache.has(nonce)) return false;
    this.#cache.set(nonce, true, { ttl: Math.max(1, expiresAt - this.#now()) });
    return true;
  }
}

/** The payload signed into a `state`. */
export interface StatePayload {
  /** Nonce. */
  readonly n: string;
  /** Expiry, unix ms. */
  readonly e: number;
  /** returnTo. */
  readonly r?: string;
  /** data. */
  readonly d?: string;
  /** The portal the state was issued for: its base URL (`https://acme.bitrix24.com`). */
  readonly p?: string;
}

/** The default lifetime of a `state`: 10 minutes. */
export const DEFAULT_STATE_TTL_MS = 10 * 60 * 1000;
const MAX_STATE_LENGTH = 4096;

/** Issues and checks the states of one flow. */
export interface StateSigner {
  /** A fresh signed state carrying `returnTo` and `data`. */
  issue(returnTo: string | undefined, data: string | undefined, portal?: string): string;
  /**
   * Checks a state in the order malformed, signature, expired, replayed, and spends it on success.
   * @throws {@link InvalidStateError} naming the first check that failed.
   */
  consume(state: string | undefined): Promise<StatePayload>;
}

/**
 * Builds the signer of one flow.
 * @param secret - the HMAC key, at least 32 bytes (checked by the caller).
 * @param ttlMs - how long a state stays valid.
 * @param now - the flow's clock, unix ms.
 * @param usedStates - where spent nonces are remembered.
 */
export function createStateSigner(secret: Uint8Array, ttlMs: number, now: () => number, usedStates: UsedStateStore): StateSigner {
  const sign = (encoded: string): Buffer => createHmac('sha256', secret).update(encoded, 'utf8').digest();
  return {
    issue(returnTo, data, portal) {
      const payload: StatePayload = {
        n: randomBytes(16).toString('base64url'),
        e: now() + ttlMs,
        ...(returnTo === undefined ? {} : { r: returnTo }),
        ...(data === undefined ? {} : { d: data }),
        ...(portal === undefined ? {} : { p: portal }),
      };
      const encoded = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
      return `${encoded}.${sign(encoded).toString('base64url')}`;
    },
    async consume(state) {
      if (state === undefined || state === '' || state.length > MAX_STATE_LENGTH) throw new InvalidStateError('malformed');
      const parts = state.split('.');
      const [encoded, signature] = parts;
      if (parts.length !== 2 || encoded === undefined || signature === undefined || !/^[A-Za-z0-9_-]+$/.test(encoded + signature)) {
        throw new InvalidStateError('malformed');
      }
      const given = Buffer.from(signature, 'base64url');
      const expected = sign(encoded);
      if (given.byteLength !== expected.byteLength || !timingSafeEqual(given, expected)) throw new InvalidStateError('signature');
      const payload = readPayload(encoded);
      if (payload === undefined) throw new InvalidStateError('malformed');
      if (now() >= payload.e) throw new InvalidStateError('expired');
      if (!(await usedStates.markUsed(payload.n, payload.e))) throw new InvalidStateError('replayed');
      return payload;
    },
  };
}

function readPayload(encoded: string): StatePayload | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v['n'] !== 'string' || v['n'] === '' || typeof v['e'] !== 'number' || !Number.isFinite(v['e'])) return undefined;
  for (const key of ['r', 'd', 'p']) if (v[key] !== undefined && typeof v[key] !== 'string') return undefined;
  return {
    n: v['n'],
    e: v['e'],
    ...(typeof v['r'] === 'string' ? { r: v['r'] } : {}),
    ...(typeof v['d'] === 'string' ? { d: v['d'] } : {}),
    ...(typeof v['p'] === 'string' ? { p: v['p'] } : {}),
  };
}
