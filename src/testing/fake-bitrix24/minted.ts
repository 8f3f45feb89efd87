// Every secret the stand-in hands out (access and refresh tokens, authorization codes, application
// tokens, the app's client secret) is published on one `node:diagnostics_channel`, so a test
// process can collect all of them and search what the library let out for any (the leak check in
// this package's own suite does). Nothing is published while nobody subscribes.

import { channel } from 'node:diagnostics_channel';

/** The name of the channel {@link MintedSecret}s are published on. */
export const MINTED_SECRETS_CHANNEL = 'b24-portal-tokens:testing:minted';

/** One secret a stand-in minted or was configured with. */
export interface MintedSecret {
  /** What it is. */
  readonly kind: 'access_token' | 'refresh_token' | 'authorization_code' | 'application_token' | 'client_secret';
  /** The value. */
  readonly value: string;
}

const mintedChannel = channel(MINTED_SECRETS_CHANNEL);

/** Publishes a secret when someone listens. */
export function announceSecret(kind: MintedSecret['kind'], value: string): void {
  if (mintedChannel.hasSubscribers) mintedChannel.publish({ kind, value } satisfies MintedSecret);
}
