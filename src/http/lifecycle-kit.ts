// What the install, update and uninstall steps of the lifecycle handler share: their settings, and the
// ways they refuse, report a store failure, tell the context, and run a hook on the context's clock.

import type { LifecycleChange, PortalTokensContext } from '../context.js';
import { ErrorCode, StoreError } from '../errors.js';
import type { InstallEvent, LifecycleEvent, UninstallEvent, UpdateEvent } from '../events/types.js';
import { describeError, type Logger } from '../logger.js';
import type { Refusal } from '../oauth/verify.js';
import type { FileInstallSpool } from '../spool/file-spool.js';
import type { PortalRecord } from '../store/token-store.js';
import { LifecycleAnswerError } from './answers.js';

/** The handler's settings, resolved once. */
export interface LifecycleKit {
  /** Store, OAuth client, clock and whom to tell. */
  readonly context: PortalTokensContext;
  /** Where to log. */
  readonly logger: Logger;
  /** Whether installs and updates are checked with `app.info`. */
  readonly verify: boolean;
  /** The trusted OAuth bases. */
  readonly trusted: readonly string[];
  /** How long an answer waits for a hook, ms. */
  readonly hookTimeoutMs: number;
  /** Runs after a stored install or update. */
  readonly onInstalled: ((event: InstallEvent | UpdateEvent, record: PortalRecord) => void | Promise<void>) | undefined;
  /** Runs after an uninstall. */
  readonly onUninstalled: ((event: UninstallEvent, record: PortalRecord) => void | Promise<void>) | undefined;
  /** Where proven events wait while the store is down (none: answer 503). */
  readonly spool: Pick<FileInstallSpool, 'put' | 'drain'> | undefined;
  /** Starts a replay of the spool in the background (after a store success). */
  readonly replaySpool: (() => void) | undefined;
}

/** Logs why an event was refused and returns the 403 to throw. */
export function refusal(kit: LifecycleKit, reason: Refusal, event: LifecycleEvent): LifecycleAnswerError {
  kit.logger.warn({ memberId: event.auth.memberId, event: event.event, reason }, 'Lifecycle event refused');
  return new LifecycleAnswerError(ErrorCode.VerificationFailed, 403, `Lifecycle event refused (${reason})`, {
    memberId: event.auth.memberId,
  });
}

/** Logs a store failure and returns the 500 to throw. */
export function storeFailure(kit: LifecycleKit, error: unknown, event: LifecycleEvent, operation: string): LifecycleAnswerError {
  kit.logger.error(
    { memberId: event.auth.memberId, event: event.event, operation, err: describeError(error) },
    'Token store failed while handling a lifecycle event',
  );
  // An unreachable store may come back: 503 with a hint; anything else is a 500.
  const transient = error instanceof StoreError && error.transient;
  return new LifecycleAnswerError(ErrorCode.StoreFailure, transient ? 503 : 500, `Token store failed (${operation})`, {
    memberId: event.auth.memberId,
    cause: error,
    ...(transient ? { headers: { 'retry-after': '5' } } : {}),
  });
}

/** Tells the context about a write; a throw is logged, since the write already happened. */
export function notifySafely(kit: LifecycleKit, change: LifecycleChange): void {
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
