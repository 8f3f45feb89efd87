// The lifecycle handler's form of the chain core's refusals and failures: each becomes a
// LifecycleAnswerError, the answer the handler sends (the core decides, the handler answers).

import type { LifecycleAnswers } from '../chains/kit.js';
import { ErrorCode, StoreError } from '../errors.js';
import type { LifecycleEvent } from '../events/types.js';
import { describeError, type Logger } from '../logger.js';
import type { Refusal } from '../oauth/verify.js';
import { LifecycleAnswerError } from './answers.js';

/** The handler's answers for the chain core's lifecycle steps, logging each where it happens. */
export function lifecycleAnswers(logger: Logger): LifecycleAnswers {
  return {
    refuse(reason: Refusal, event: LifecycleEvent): LifecycleAnswerError {
      logger.warn({ memberId: event.auth.memberId, event: event.event, reason }, 'Lifecycle event refused');
      return new LifecycleAnswerError(ErrorCode.VerificationFailed, 403, `Lifecycle event refused (${reason})`, {
        memberId: event.auth.memberId,
      });
    },
    storeFailure(error: unknown, event: LifecycleEvent, operation: string): LifecycleAnswerError {
      logger.error(
        { memberId: event.auth.memberId, event: event.event, operation, err: describeError(error) },
        'Token store failed while handling a lifecycle event',
      );
      // An unreachable store may come back: 503 with a hint; anything else is a 500. The answer goes
      // to whoever posted the event, a forger included: it never says that the store is the cause.
      const transient = error instanceof StoreError && error.transient;
      return new LifecycleAnswerError(ErrorCode.Internal, transient ? 503 : 500, transient ? 'Temporarily unavailable' : 'Internal error', {
        memberId: event.auth.memberId,
        cause: error,
        ...(transient ? { headers: { 'retry-after': '5' } } : {}),
      });
    },
    oauthFailure(kind, event, cause): LifecycleAnswerError {
      const memberId = event.auth.memberId;
      if (kind === 'credentials') {
        return new LifecycleAnswerError(ErrorCode.OAuthCredentials, 500, "The app's client credentials were refused", { memberId, cause });
      }
      return kind === 'unavailable'
        ? new LifecycleAnswerError(ErrorCode.OAuthUnavailable, 503, 'The trusted OAuth host could not be asked', {
            memberId,
            headers: { 'retry-after': '5' },
            cause,
          })
        : new LifecycleAnswerError(ErrorCode.OAuthInvalidResponse, 502, 'The trusted OAuth host answered something unusable', { memberId, cause });
    },
  };
}
