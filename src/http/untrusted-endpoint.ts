// The refusal of an install or update whose `server_endpoint` names an OAuth host outside the
// allow-list. It is the usual first failure against a stand-in (the option left out), so the log
// line says which host the event named and which option trusts it; the answer stays a terse 403.

import { ErrorCode } from '../errors.js';
import type { LifecycleEvent } from '../events/types.js';
import type { Logger } from '../logger.js';
import { LifecycleAnswerError } from './answers.js';

/** The host (`name[:port]`) of an endpoint URL, or a placeholder; never its path or query. */
function hostOf(endpoint: string): string {
  try {
    return new URL(endpoint).host;
  } catch {
    return '(not a URL)';
  }
}

/** Logs the untrusted host and the option that would trust it; returns the 403 to throw. */
export function untrustedEndpointRefusal(logger: Logger, trusted: readonly string[], event: LifecycleEvent): LifecycleAnswerError {
  const host = hostOf(event.auth.serverEndpoint ?? '');
  logger.warn(
    { memberId: event.auth.memberId, event: event.event, reason: 'untrusted_server_endpoint', host, trustedOAuthHosts: trusted },
    `Lifecycle event refused: its server_endpoint names the OAuth host ${host}, which is not in the handler's trustedOAuthHosts option (${trusted.join(', ')}); add it there if it is yours (a stand-in in tests)`,
  );
  return new LifecycleAnswerError(ErrorCode.VerificationFailed, 403, `Lifecycle event refused (untrusted_server_endpoint: ${host} is not in trustedOAuthHosts)`, {
    memberId: event.auth.memberId,
  });
}
