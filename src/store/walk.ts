// Whole-store walks (the sweep, the CLI's status, migrate and rekey): every chain, a page at a time,
// and what could not be read reported beside what could, so one bad record stops nobody. With
// `listAll` a walk sees every chain, a user's chain without its portal's included; without it, it
// falls back to `list` plus `listChains` and says so (`complete: false`).

import { PortalTokensError } from '../errors/base.js';
import { StoreError } from '../errors/store.js';
import type { PortalRecord, TokenStore, UnreadableRecord } from './token-store.js';

/** One step of a walk: the records read and those that could not be. */
export interface WalkPage {
  /** Records read, in store order (a portal's chain before its users' chains). */
  readonly records: readonly PortalRecord[];
  /** Records the store holds but could not read. */
  readonly unreadable: readonly UnreadableRecord[];
}

/** Options of {@link walkStore}. */
export interface WalkOptions {
  /** Records read per page. */
  readonly pageSize: number;
  /** Also users' chains (`false`: portal chains only). */
  readonly userChains: boolean;
  /** Stops between pages when aborted. */
  readonly signal?: AbortSignal | undefined;
}

/** Whether a walk of `store` with users' chains sees every chain (the store has `listAll`). */
export function walksEveryChain(store: TokenStore): boolean {
  return typeof store.listAll === 'function';
}

/**
 * Walks the store. Portal chains only: `list`. With users' chains: `listAll` when the store has it,
 * else `list` and each listed portal's `listChains` (a portal whose user chains cannot be listed is
 * reported as unreadable, chain `portal` standing for the portal).
 * @throws TypeError when the store cannot list.
 */
export async function* walkStore(store: TokenStore, options: WalkOptions): AsyncGenerator<WalkPage> {
  const list = store.list?.bind(store);
  if (!store.capabilities.list || list === undefined) throw new TypeError('the store cannot list its records (capabilities.list)');
  const listAll = options.userChains ? store.listAll?.bind(store) : undefined;
  const listChains = options.userChains ? store.listChains?.bind(store) : undefined;
  let after: string | undefined;
  do {
    if (options.signal?.aborted === true) return;
    const page = await (listAll ?? list)({ after, limit: options.pageSize });
    const unreadable = [...(page.unreadable ?? [])];
    let records: readonly PortalRecord[] = page.records;
    if (listAll === undefined && listChains !== undefined) {
      const all: PortalRecord[] = [];
      // Users' chains of every listed portal, those whose own chain could not be read included.
      const members = [...new Set([...page.records.map((r) => r.memberId), ...unreadable.map((u) => u.memberId)])].sort();
      for (const memberId of members) {
        const own = page.records.find((r) => r.memberId === memberId);
        if (own !== undefined) all.push(own);
        try {
          all.push(...(await listChains(memberId)));
        } catch (error) {
          if (!(error instanceof PortalTokensError) || (error instanceof StoreError && error.transient)) throw error;
          unreadable.push({ memberId, chain: 'portal', error });
        }
      }
      records = all;
    }
    yield { records, unreadable };
    after = page.next;
  } while (after !== undefined);
}

/** One line naming an unreadable record (ids and the error's code only). */
export function describeUnreadable(item: UnreadableRecord): string {
  return `${item.memberId} ${item.chain}: ${item.error.code}`;
}
