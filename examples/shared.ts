// What the three example backends share: configuration from the environment, the pool built from it,
// and the one REST call they expose (`profile`, through the portal's pooled client).
// In your app, import from 'b24-portal-tokens' instead of '../src/index.js'.

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ErrorCode,
  FileTokenStore,
  findPortalTokensError,
  PortalClientPool,
  type Logger,
  type RestRootRules,
  type TokenStore,
} from '../src/index.js';

/** Everything an example backend needs to start. */
export interface ExampleConfig {
  /** The app's client_id (B24_CLIENT_ID). */
  readonly clientId: string;
  /** The app's client_secret (B24_CLIENT_SECRET). */
  readonly clientSecret: string;
  /** The port to listen on (PORT); 0 picks a free one. */
  readonly port?: number;
  /** Where the file store keeps one file per portal (TOKEN_DIR); ignored when `store` is given. */
  readonly tokenDir?: string;
  /** A ready store, instead of the file store in `tokenDir`. */
  readonly store?: TokenStore;
  /** OAuth hosts to trust (B24_TRUSTED_OAUTH_HOSTS, comma-separated); Bitrix24's own by default. */
  readonly trustedOAuthHosts?: readonly string[];
  /** REST roots that may receive tokens beyond Bitrix24 portals' own https domains (a stand-in's). */
  readonly restRoots?: RestRootRules;
  /** Where the library logs (identifiers only, never tokens). */
  readonly logger?: Logger;
}

/** A started example: its base URL, its pool, and how to stop it. */
export interface RunningExample {
  readonly url: string;
  readonly pool: PortalClientPool;
  close(): Promise<void>;
}

/** Wraps a listening `node:http` server (Express's included) and its pool as a {@link RunningExample}. */
export function runningExample(server: Server, pool: PortalClientPool): RunningExample {
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    pool,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await pool.close();
    },
  };
}

/** Reads the configuration from environment variables. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ExampleConfig {
  const clientId = env['B24_CLIENT_ID'];
  const clientSecret = env['B24_CLIENT_SECRET'];
  if (!clientId || !clientSecret) throw new Error('Set B24_CLIENT_ID and B24_CLIENT_SECRET');
  const hosts = env['B24_TRUSTED_OAUTH_HOSTS']?.split(',').map((host) => host.trim()).filter(Boolean);
  return {
    clientId,
    clientSecret,
    port: Number(env['PORT'] ?? 3000),
    tokenDir: env['TOKEN_DIR'] ?? '.tokens',
    ...(hosts?.length ? { trustedOAuthHosts: hosts } : {}),
  };
}

/** The pool every example serves portals from. */
export function createPool(config: ExampleConfig): PortalClientPool {
  return new PortalClientPool({
    store: config.store ?? new FileTokenStore({ directory: config.tokenDir ?? '.tokens' }),
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    ...(config.trustedOAuthHosts ? { trustedOAuthHosts: config.trustedOAuthHosts } : {}),
    ...(config.restRoots ? { restRoots: config.restRoots } : {}),
    ...(config.logger ? { logger: config.logger } : {}),
  });
}

/** The `profile` of the user a portal's chain acts as, as an HTTP status and a JSON body. */
export async function profileOf(pool: PortalClientPool, memberId: string): Promise<{ status: number; body: unknown }> {
  try {
    const client = await pool.clientFor(memberId);
    const answer = await client.actions.v2.call.make<Record<string, unknown>>({ method: 'profile' });
    return { status: 200, body: { memberId, profile: answer.getData()?.result ?? null } };
  } catch (error) {
    // The SDK wraps a refresh failure; the library's own error says what happened to the portal.
    const known = findPortalTokensError(error);
    if (known?.code === ErrorCode.PortalNotInstalled) return { status: 404, body: { error: known.code } };
    if (known?.code === ErrorCode.PortalRevoked) return { status: 410, body: { error: known.code } };
    return { status: 502, body: { error: 'BITRIX24_CALL_FAILED' } };
  }
}
