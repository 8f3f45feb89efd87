// ONAPPINSTALL and ONAPPUPDATE as answers: the chain core (src/chains/install.ts) decides and writes;
// this turns its outcome into the handler's JSON answer.

import { installOrUpdate } from '../chains/install.js';
import type { LifecycleKit } from '../chains/kit.js';
import type { InstallEvent, UpdateEvent } from '../events/types.js';
import { jsonResponse, type PlainResponse } from '../plain.js';

/** Handles a parsed ONAPPINSTALL or ONAPPUPDATE. */
export async function handleInstallOrUpdate(kit: LifecycleKit, event: InstallEvent | UpdateEvent): Promise<PlainResponse> {
  const outcome = await installOrUpdate(kit, event);
  return jsonResponse(200, outcome.kind === 'spooled' ? { ok: true, spooled: true } : { ok: true });
}
