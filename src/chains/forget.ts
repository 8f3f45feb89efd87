// An operator's `forget`: every chain of a portal removed at once, the one door into the store that
// needs no proof from the OAuth host (the operator has the store's credentials and asked for it).
// The command-line tool confirms the request and prints; this decides what is removed.

import type { TokenStore } from '../store/token-store.js';

/** What `forget` removed. */
export interface ForgetOutcome {
  /** How many records (the portal's chain and its users' chains) were removed. */
  readonly deleted: number;
}

/**
 * Removes every chain of `memberId` (the portal's and every user's). Unlike an uninstall it asks
 * no OAuth host: it is for an operator who knows the app is gone, or wants a portal's tokens gone.
 */
export async function forgetPortal(store: TokenStore, memberId: string): Promise<ForgetOutcome> {
  return { deleted: await store.deletePortal(memberId) };
}
