// The authorization-code callback's write, decided here like every other chain write: the exchanged
// and verified chain becomes the record of the chain the flow chose (the portal's for an
// administrator, else the user's own), built by the one record builder.

import type { PortalTokensContext } from '../context.js';
import { InvalidEventError } from '../errors.js';
import type { AppInfo, TokenResponse } from '../oauth/oauth-client.js';
import { portalRestEndpoint } from '../protocol/portal.js';
import type { ChainId, PortalRecord } from '../store/token-store.js';
import { recordFromAnswer } from './record.js';

/** A chain the authorization-code flow exchanged and verified. */
export interface AuthorizedChain {
  /** The portal. */
  readonly memberId: string;
  /** Which chain it becomes (`'portal'` only for an administrator). */
  readonly chain: ChainId;
  /** The code exchange's answer. */
  readonly tokens: TokenResponse;
  /** The trusted OAuth base the code was exchanged at. */
  readonly oauthBase: string;
  /** What the host's `app.info` said about the chain. */
  readonly info: AppInfo;
  /** The redirect's own values, used only where the OAuth host is silent. */
  readonly claimed: { readonly domain: string | undefined; readonly scope: string | undefined };
  /** Now, unix ms. */
  readonly now: number;
}

/**
 * Stores a verified authorized chain over whatever the chain held (a code exchange is a new chain
 * approved by its user now; the stored `application_token` survives: the flow carries none).
 * @throws InvalidEventError when no domain is known for the portal.
 */
export async function storeAuthorized(
  context: Pick<PortalTokensContext, 'store'>,
  authorized: AuthorizedChain,
): Promise<{ existing: PortalRecord | undefined; record: PortalRecord }> {
  const { memberId, chain, tokens, info, claimed } = authorized;
  const existing = await context.store.get({ memberId, chain });
  const domain = info.domain ?? claimed.domain ?? existing?.domain;
  if (domain === undefined) throw new InvalidEventError('domain', 'missing', 'Authorization callback lacks domain');
  const record = recordFromAnswer({
    memberId,
    chain,
    tokens: { ...tokens, scope: tokens.scope ?? info.scope, status: info.status ?? tokens.status },
    oauthBase: authorized.oauthBase,
    clientEndpoint: info.clientEndpoint ?? tokens.clientEndpoint ?? existing?.clientEndpoint ?? portalRestEndpoint(domain),
    domain,
    fallback: { scope: claimed.scope },
    existing,
    now: authorized.now,
  });
  return { existing, record: await context.store.upsert(record) };
}
