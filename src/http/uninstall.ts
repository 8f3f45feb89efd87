// ONAPPUNINSTALL as an answer: the chain core (src/chains/uninstall.ts) decides and writes; this turns
// its outcome into the handler's JSON answer. Unknown portals answer 200: the answer reveals nothing.

import type { LifecycleKit } from '../chains/kit.js';
import { uninstall } from '../chains/uninstall.js';
import type { UninstallEvent } from '../events/types.js';
import { jsonResponse, type PlainResponse } from '../plain.js';

export { UNINSTALL_PENDING } from '../chains/uninstall.js';

/** Handles a parsed ONAPPUNINSTALL. */
export async function handleUninstall(kit: LifecycleKit, event: UninstallEvent): Promise<PlainResponse> {
  const result = await uninstall(kit, event);
  return jsonResponse(200, result.kind === 'pending' ? { ok: true, pending: true } : { ok: true });
}
