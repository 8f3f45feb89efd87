// What every capability module of the conformance suite gets: the test registrar, the current
// store, the declared capabilities and small helpers. Internal to the suite (not exported by the package).

import type * as Vitest from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChainId, StoreCapabilities, StoreChange, StoreSubscription, TokenStore } from '../../store/token-store.js';
import type { StoreChild } from './child.js';

/** The portal most cases write. */
export const MEMBER = 'a223c6b3710f85df22e9377d6c4f7553';
/** Another portal, for "leaves other portals alone" cases. */
export const OTHER_MEMBER = 'b334d7c4821f96ef33f0488e7f418664';
/** A memberId holding a lone surrogate: not well-formed Unicode, so every method must refuse it. */
export const LONE_SURROGATE_MEMBER = 'portal-\uD800-x';
// Lets a lapsed lease be judged lapsed even if the store's clock runs a little behind ours.
const CLOCK_MARGIN_MS = 50;

/** Registers one case; `timeout` in ms. */
export type Register = (title: string, body: () => Promise<void> | void, timeout?: number) => void;

/** What a capability module needs to register its cases. */
export interface SuiteContext {
  /** Registers a case (honouring the suite's `skip` option). */
  readonly test: Register;
  /** vitest's `describe`, for grouping a module's cases. */
  readonly describe: typeof Vitest.describe;
  /** vitest's `expect`; every assertion passes a message naming the contract rule it checks. */
  readonly expect: typeof Vitest.expect;
  /** The current test's store. */
  readonly store: () => TokenStore;
  /** What the store declares it can do (read once, before the cases were registered). */
  readonly capabilities: StoreCapabilities;
  /** The lease TTL of the real-time lock cases, ms. */
  readonly ttl: number;
  /** Starts a child process with a store on the same backing data; only in cross-process modules. */
  readonly spawnChild: () => Promise<StoreChild>;
}

/** The store's `tryLock`, bound; fails the case if a store declaring `lock` lacks it. */
export function lockOf(target: TokenStore): NonNullable<TokenStore['tryLock']> {
  if (target.tryLock === undefined) throw new Error('capabilities.lock is true but tryLock is missing');
  const tryLock = target.tryLock.bind(target);
  return (key, ttlMs) => tryLock(key, ttlMs);
}

/** The store's `list`, bound. */
export function listOf(target: TokenStore): NonNullable<TokenStore['list']> {
  if (target.list === undefined) throw new Error('capabilities.list is true but list is missing');
  const list = target.list.bind(target);
  return (options) => list(options);
}

/** The store's `listChains`, bound. */
export function listChainsOf(target: TokenStore): NonNullable<TokenStore['listChains']> {
  if (target.listChains === undefined) throw new Error('capabilities.list is true but listChains is missing');
  const listChains = target.listChains.bind(target);
  return (memberId) => listChains(memberId);
}

/** Waits until the real clock is past `expiresAt` (plus a margin for a store clock running behind). */
export async function waitPast(expiresAt: number): Promise<void> {
  await sleep(Math.max(0, expiresAt - Date.now()) + CLOCK_MARGIN_MS);
}

/** The chain key of user `userId` of `memberId`. */
export function userKey(memberId: string, userId: number): { memberId: string; chain: ChainId } {
  return { memberId, chain: `user:${userId}` };
}

/** A subscription that records what it receives, with a way to wait for a change. */
export interface RecordingSubscription {
  /** Every change received so far, in order. */
  readonly changes: StoreChange[];
  /**
   * Resolves with the first received change (past or future) that `match` accepts; after `timeoutMs`
   * rejects with an error naming `rule`, the contract rule the wait checks.
   */
  waitFor(match: (change: StoreChange) => boolean, rule: string, timeoutMs?: number): Promise<StoreChange>;
  /** Closes the subscription. */
  close(): Promise<void>;
}

/** Subscribes to `target`'s change feed and records every change. */
export async function record(target: TokenStore): Promise<RecordingSubscription> {
  if (target.subscribe === undefined) throw new Error('capabilities.changes is true but subscribe is missing');
  const subscribe = target.subscribe.bind(target);
  const changes: StoreChange[] = [];
  const waiters = new Set<() => void>();
  const subscription: StoreSubscription = await subscribe({
    onChange(change) {
      changes.push(change);
      for (const wake of waiters) wake();
    },
  });
  return {
    changes,
    close: () => subscription.close(),
    async waitFor(match, rule, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = changes.find(match);
        if (found !== undefined) return found;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`${rule}: no matching change arrived within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            clearTimeout(timer);
            waiters.delete(wake);
            resolve();
          };
          const timer = setTimeout(wake, left);
          waiters.add(wake);
        });
      }
    },
  };
}
