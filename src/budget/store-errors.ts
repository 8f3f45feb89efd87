// A budget step's failure as the caller meets it: a custom store's raw error from `acquire` becomes a
// StoreError naming the portal, with the raw error kept as its cause.

import { PortalTokensError, StoreError } from '../errors.js';

/** The portal a budget key belongs to: `rest:<memberId>`, `share:<memberId>` or `op:<memberId>:<method>`. */
function memberOfKey(key: string): string | undefined {
  const start = key.indexOf(':');
  if (start < 0) return undefined;
  const end = key.startsWith('op:') ? key.lastIndexOf(':') : key.length;
  return end > start ? key.slice(start + 1, end) : undefined;
}

/** Runs `step`; a throw or rejection that is not one of the library's errors becomes a {@link StoreError}. */
export async function typedBudgetStep<T>(key: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof PortalTokensError) throw error;
    throw new StoreError('The token store failed to take a request budget step', { cause: error, memberId: memberOfKey(key) });
  }
}
