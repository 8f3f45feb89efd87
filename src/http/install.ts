// ONAPPINSTALL and ONAPPUPDATE as answers: the chain core (src/chains/install.ts) decides and writes;
// this turns its outcome into the handler's JSON answer.

import { installOrUpdate } from '../chains/install.js';
import type { LifecycleKit } from '../chains/kit.js';
import type { InstallEvent, UpdateEvent } from '../events/types.js';
import { jsonResponse, type PlainResponse } from '../plain.js';

/** Handles a parsed ONAPPINSTALL or ONAPPUPDATE. */
export async function handleInstallOrUpdate(kit: LifecycleKit, event: InstallEvent | UpdateEvent): Promise<PlainResponse> {
  await installOrUpdate(kit, event);
  // A spooled event gets the answer of a stored one: the sender never learns that the store is down.
  return jsonResponse(200, { ok: true });
}
