// The commands that call Bitrix24: `sweep`, `reactivate` and the proof of `import-recipe`'s chains.
// They need the pool (and with it @bitrix24/b24jssdk) or the OAuth client, so program.ts imports this
// module only when one of them runs: every other command, `--help` and `--version` start without
// loading the SDK (test/cli/lazy-sdk.test.ts). Keep it that way: nothing else in src/cli imports it
// statically.

import type { PortalListOptions, PortalListPage, TokenStore } from '../store/token-store.js';
import { PortalClientPool } from '../pool/pool.js';
import { OAuthClient } from '../oauth/oauth-client.js';
import { normalizeTrustedHosts } from '../protocol/oauth-hosts.js';
import { trustedOAuthBaseOf } from '../guard/trusted-hosts.js';
import { consoleLogger, silentLogger } from '../logger.js';
import { ExitCode } from './errors.js';
import { progress, type CliIo } from './io.js';
import { countPortals } from './count.js';
import { proveByRefresh, type ProveChain } from './import-recipe.js';
import type { AppCredentials } from './maintenance.js';

/** The proof of an imported chain: a refresh at the trusted OAuth host its serverEndpoint names. */
export function recipeProof(creds: AppCredentials): ProveChain {
  const oauth = new OAuthClient({ clientId: creds.clientId, clientSecret: creds.clientSecret });
  const trusted = creds.trustedOAuthHosts ?? normalizeTrustedHosts(undefined, '--oauth-host');
  return proveByRefresh((entry) => oauth.refresh(trustedOAuthBaseOf(entry.serverEndpoint, trusted, entry.memberId), entry.refreshToken), Date.now);
}

/** A view of the store whose `list` reports each page it returns (for the sweep's progress). */
function counting(store: TokenStore, onPage: (records: number) => void): TokenStore {
  const list = store.list?.bind(store);
  if (list === undefined) return store;
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'list') {
        return async (options?: PortalListOptions): Promise<PortalListPage> => {
          const page = await list(options);
          onPage(page.records.length);
          return page;
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Options of the `sweep` command. */
export interface SweepCommandOptions {
  readonly idleDays: number;
  readonly concurrency: number;
  readonly pageSize: number;
  readonly userChains: boolean;
  readonly verbose: boolean;
}

/** Runs the pool's keep-alive sweep with a progress bar; returns the exit code. */
export async function runSweepCommand(store: TokenStore, io: CliIo, creds: AppCredentials, options: SweepCommandOptions): Promise<number> {
  const bar = progress(io, 'sweeping', 1000);
  bar.total(await countPortals(store, options.pageSize));
  let pending = 0;
  const pool = new PortalClientPool({ store: counting(store, (n) => (pending += n)), ...creds, logger: options.verbose ? consoleLogger : silentLogger });
  // Why refreshes failed, counted by code: printed by default (a wrong secret shows as OAUTH_CREDENTIALS).
  const causes = new Map<string, number>();
  pool.on('refresh-failed', (event) => causes.set(event.code, (causes.get(event.code) ?? 0) + 1));
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  const timer = setInterval(() => {
    if (pending > 0) bar.tick(pending);
    pending = 0;
  }, 200);
  try {
    const result = await pool.sweep({ idleDays: options.idleDays, concurrency: options.concurrency, pageSize: options.pageSize, userChains: options.userChains, signal: controller.signal });
    if (pending > 0) bar.tick(pending);
    bar.stop();
    io.out(`sweep${controller.signal.aborted ? ' (interrupted)' : ''}: ${result.checked} chains checked, ${result.refreshed} refreshed, ${result.revoked} revoked, ${result.failed} failed, ${result.unreadable.length} could not be read\n`);
    if (causes.size > 0) io.out(`  failed by cause: ${[...causes].sort((a, b) => b[1] - a[1]).map(([code, n]) => `${code} ${n}`).join(', ')}\n`);
    for (const u of result.unreadable) io.out(`  unreadable ${u.memberId} ${u.chain}: ${u.code}\n`);
    return result.failed > 0 || result.unreadable.length > 0 || controller.signal.aborted ? ExitCode.Failure : ExitCode.Ok;
  } finally {
    clearInterval(timer);
    process.off('SIGINT', stop);
    await pool.close();
  }
}

/** `reactivate`: one try of the stored refresh token; prints the chain's state. */
export async function runReactivate(store: TokenStore, io: CliIo, creds: AppCredentials, memberId: string, userId: number | undefined): Promise<number> {
  const pool = new PortalClientPool({ store, ...creds, logger: silentLogger });
  try {
    const record = await pool.reactivate(memberId, { userId });
    io.out(`${record.memberId} ${record.chain}: ${record.state}, version ${record.version}, token expires ${new Date(record.expires * 1000).toISOString()}\n`);
    return ExitCode.Ok;
  } finally {
    await pool.close();
  }
}
