// Small record helpers of the coordinator: the key of a chain in this process's maps. What a refresh
// answer changes in a record is decided by the chain core (src/chains/record.ts).

import type { ChainId } from '../store/token-store.js';

export { isHttpUrl, pairPatch } from '../chains/record.js';

/** The key of a chain in this process's maps. */
export function chainKeyOf(memberId: string, chain: ChainId): string {
  return `${memberId} ${chain}`;
}
