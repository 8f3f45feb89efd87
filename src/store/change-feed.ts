// The change feed of a TokenStore: one write as delivered, the listener, the subscription.

import type { ChainId } from './portal-record.js';

/** One write, as a change feed delivers it. Carries no token. */
export interface StoreChange {
  /** The portal written. */
  readonly memberId: string;
  /** The chain written; `undefined` when the write concerned every chain of the portal ({@link TokenStore.deletePortal}). */
  readonly chain: ChainId | undefined;
  /** The record's version after the write (the tombstone's version for a delete), when known. */
  readonly version: number | undefined;
  /** `true` when the write deleted the record(s). */
  readonly deleted: boolean;
}

/** What {@link TokenStore.subscribe} calls. Listeners must not throw; the store ignores what they throw. */
export interface StoreChangeListener {
  /** A write happened (in this process or another). */
  onChange(change: StoreChange): void;
  /**
   * The feed lost its connection (`'lost'`: changes may be missed until it is back) or came back
   * (`'restored'`: changes made in between were not delivered, so anything cached must be re-read).
   * The store reconnects by itself.
   */
  onStatus?(status: 'lost' | 'restored'): void;
}

/** A live subscription to a store's change feed. */
export interface StoreSubscription {
  /** Stops delivery and frees the connection the feed used. Idempotent. */
  close(): Promise<void>;
}
