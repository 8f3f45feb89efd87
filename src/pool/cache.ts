// The pool's cache of chain slots: an LRU bounded by `max`, each eviction announced with its reason
// (capacity unless a reason was given when the slot was dropped).

import { LRUCache } from 'lru-cache';
import type { EvictionReason, PoolEventMap } from '../pool-events.js';
import type { ChainSlot } from './slot.js';

/** The cached slots, keyed by `chainKeyOf(memberId, chain)`. */
export class SlotCache {
  /** Slots dropped since construction. */
  evictions = 0;
  readonly #lru: LRUCache<string, ChainSlot>;
  readonly #pendingReason = new Map<string, EvictionReason>();

  /** At most `max` slots; `evicted` hears each one dropped. */
  constructor(max: number, evicted: (payload: PoolEventMap['evicted']) => void) {
    this.#lru = new LRUCache<string, ChainSlot>({
      max,
      dispose: (slot, key) => {
        const reason = this.#pendingReason.get(key) ?? 'capacity';
        this.#pendingReason.delete(key);
        this.evictions++;
        evicted({ memberId: slot.record.memberId, chain: slot.record.chain, reason });
      },
    });
  }

  /** How many slots are cached. */
  get size(): number {
    return this.#lru.size;
  }

  /** The slot of `key`, counted as a use. */
  get(key: string): ChainSlot | undefined {
    return this.#lru.get(key);
  }

  /** The slot of `key`, without counting a use. */
  peek(key: string): ChainSlot | undefined {
    return this.#lru.peek(key);
  }

  /** Caches a slot. */
  set(key: string, slot: ChainSlot): void {
    this.#lru.set(key, slot);
  }

  /** Drops the slot of `key` for `reason`; whether one was cached. */
  evict(key: string, reason: EvictionReason): boolean {
    if (!this.#lru.has(key)) return false;
    this.#pendingReason.set(key, reason);
    return this.#lru.delete(key);
  }

  /** Drops every chain of a portal (its own and every user's); whether any was cached. */
  evictPortal(memberId: string, reason: EvictionReason): boolean {
    let any = false;
    const prefix = `${memberId} `;
    for (const key of [...this.#lru.keys()]) {
      if (key.startsWith(prefix) && this.evict(key, reason)) any = true;
    }
    return any;
  }

  /** Drops every slot. */
  evictAll(reason: EvictionReason): void {
    for (const key of [...this.#lru.keys()]) this.evict(key, reason);
  }
}
