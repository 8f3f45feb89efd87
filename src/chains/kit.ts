// What the chain core's lifecycle steps (install, update, uninstall, the spool's replay) share: their
// settings, how a refusal or a failure becomes the caller's answer (the caller decides the form: the
// HTTP handler makes answers of them), and how they tell the context and run a hook.

import type { LifecycleChange, PortalTokensContext } from '../context.js';
import type { InstallEvent, LifecycleEvent, UninstallEvent, UpdateEvent } from '../events/types.js';
import { describeError, type Logger } from '../logger.js';
import type { Refusal } from '../oauth/verify.js';
import type { SpoolDrainResult } from '../spool/file-spool.js';
import type { SpoolEntry } from '../spool/entry.js';
import type { PortalRecord } from '../store/token-store.js';

/** What an uninstall tells `onUninstalled` beside the event and the record. */
export interface UninstallOutcome {
  /**
   * Whether the OAuth host confirmed the app is gone: a chain of the portal that was alive is now
   * refused. `false` when no stored chain was alive to ask (every one revoked or lapsed before):
   * the dead records were removed, nothing that still works was, and the app may still be
   * installed; keep the portal's data (the event's `clean` is then `false`).
   */
  readonly confirmed: boolean;
}

/** How a refused or failed lifecycle step becomes the caller's error (the handler's answers). */
export interface LifecycleAnswers {
  /** The event is not proven genuine, or may not make this change: nothing changed. */
  refuse(reason: Refusal, event: LifecycleEvent): Error;
  /** The store failed during `operation`. */
  storeFailure(error: unknown, event: LifecycleEvent, operation: string): Error;
  /** The trusted OAuth host refused the app's credentials, could not be asked, or answered garbage. */
  oauthFailure(kind: 'credentials' | 'unavailable' | 'invalid', event: LifecycleEvent, cause: unknown): Error;
}

/** The lifecycle steps' settings, resolved once. */
export interface LifecycleKit {
  /** Store, OAuth client, clock and whom to tell. */
  readonly context: PortalTokensContext;
  /** Where to log. */
  readonly logger: Logger;
  /** Whether installs and updates are proven at the OAuth host. */
  readonly verify: boolean;
  /** The trusted OAuth bases. */
  readonly trusted: readonly string[];
  /** How long an answer waits for a hook, ms. */
  readonly hookTimeoutMs: number;
  /** Runs after a stored install or update. */
  readonly onInstalled: ((event: InstallEvent | UpdateEvent, record: PortalRecord) => void | Promise<void>) | undefined;
  /** Runs after an uninstall. */
  readonly onUninstalled: ((event: UninstallEvent, record: PortalRecord, outcome: UninstallOutcome) => void | Promise<void>) | undefined;
  /** Where proven events wait while the store is down (none: the store failure is the answer). */
  readonly spool: { put(entry: SpoolEntry): Promise<unknown> } | undefined;
  /** Applies what the spool holds now (after a store success, and before an uninstall decides). */
  readonly replaySpool: (() => Promise<SpoolDrainResult | undefined>) | undefined;
  /** The caller's form of a refusal or a failure. */
  readonly answers: LifecycleAnswers;
}

/** Tells the context about a write; a throw is logged, since the write already happened. */
export function notifySafely(kit: Pick<LifecycleKit, 'context' | 'logger'>, change: LifecycleChange): void {
  try {
    kit.context.notify(change);
  } catch (error) {
    kit.logger.error({ memberId: change.memberId, change: change.type, err: describeError(error) }, 'Pool notification failed');
  }
}

/**
 * Runs a hook, waiting at most `hookTimeoutMs` by the context's clock; a throw is logged (its name
 * only) and a hook still running is left to finish on its own.
 */
export async function runHook(kit: LifecycleKit, name: string, memberId: string, run: () => void | Promise<void>): Promise<void> {
  const settled = (async () => {
    try {
      await run();
    } catch (error) {
      kit.logger.error({ memberId, hook: name, err: describeError(error) }, 'Lifecycle hook failed');
    }
  })().then(() => 'done' as const);
  const stop = new AbortController();
  const timeout = kit.context.clock.sleep(kit.hookTimeoutMs, stop.signal).then(
    () => 'timeout' as const,
    () => 'stopped' as const,
  );
  const outcome = await Promise.race([settled, timeout]);
  stop.abort();
  if (outcome === 'timeout') {
    kit.logger.warn({ memberId, hook: name, hookTimeoutMs: kit.hookTimeoutMs }, 'Lifecycle hook still running; answered without waiting for it');
  }
}
