// Counting a store's portals, a page at a time.

import type { TokenStore } from '../store/token-store.js';
import { usageError } from './errors.js';

/** How many portals (portal chains) the store lists. */
export async function countPortals(store: TokenStore, pageSize: number): Promise<number> {
  if (!store.capabilities.list || store.list === undefined) throw usageError('this store cannot list its records');
  let n = 0;
  let after: string | undefined;
  do {
    const page = await store.list({ after, limit: pageSize });
    n += page.records.length + (page.unreadable?.length ?? 0);
    after = page.next;
  } while (after !== undefined);
  return n;
}
