// `forget`, `rekey` and `sweep --dry-run`: thin commands over the stores, and the app credentials of
// the commands that call Bitrix24 (those live in bitrix24.ts, which the CLI loads only when one runs).

import { forgetPortal } from '../chains/forget.js';
import { EncryptedTokenStore } from '../store/encrypted/store.js';
import type { TokenStore } from '../store/token-store.js';
import { CliError, ExitCode, scrub, usageError } from './errors.js';
import type { CliIo } from './io.js';
import { describeUnreadable, walkStore } from '../store/walk.js';
import { normalizeTrustedHosts } from '../protocol/oauth-hosts.js';

/** The app's credentials, and the OAuth hosts they may be sent to. */
export interface AppCredentials {
  readonly clientId: string;
  readonly clientSecret: string;
  /** `--oauth-host` or `B24PT_OAUTH_HOSTS`; Bitrix24's own hosts when absent. */
  readonly trustedOAuthHosts?: readonly string[] | undefined;
}

/** The app's credentials from options or the environment. */
export function credentials(io: CliIo, options: { clientId?: string | undefined; clientSecret?: string | undefined; oauthHost?: string[] | undefined }): AppCredentials {
  const clientId = options.clientId ?? io.env['B24PT_CLIENT_ID'];
  const clientSecret = options.clientSecret ?? io.env['B24PT_CLIENT_SECRET'];
  if (clientId === undefined || clientId === '' || clientSecret === undefined || clientSecret === '') {
    throw usageError('the app credentials are missing: pass --client-id and --client-secret, or set B24PT_CLIENT_ID and B24PT_CLIENT_SECRET');
  }
  const hosts = options.oauthHost ?? io.env['B24PT_OAUTH_HOSTS']?.split(',').map((host) => host.trim()).filter((host) => host !== '');
  if (hosts === undefined || hosts.length === 0) return { clientId, clientSecret };
  try {
    return { clientId, clientSecret, trustedOAuthHosts: normalizeTrustedHosts(hosts, '--oauth-host') };
  } catch (error) {
    throw usageError(`${error instanceof Error ? error.message : 'invalid OAuth host'} (B24PT_OAUTH_HOSTS or --oauth-host: the OAuth hosts refreshes may go to)`);
  }
}

/** `sweep --dry-run`: counts the chains a sweep would refresh (active, idle past `idleDays`); sends nothing. */
export async function runSweepDryRun(store: TokenStore, io: CliIo, options: { idleDays: number; pageSize: number; userChains: boolean }): Promise<number> {
  const idleMs = options.idleDays * 86_400_000;
  const now = Date.now();
  let checked = 0;
  let due = 0;
  const unreadable: string[] = [];
  for await (const page of walkStore(store, { pageSize: options.pageSize, userChains: options.userChains })) {
    for (const record of page.records) {
      checked++;
      if (record.state === 'active' && now - record.chainUpdatedAt > idleMs) due++;
    }
    for (const item of page.unreadable) unreadable.push(describeUnreadable(item));
  }
  io.out(`sweep (dry run): ${checked} chains checked, ${due} would be refreshed, ${unreadable.length} could not be read\n`);
  for (const line of unreadable) io.out(`  unreadable ${line}\n`);
  return unreadable.length > 0 ? ExitCode.Failure : ExitCode.Ok;
}

/** `forget`: deletes every chain of a portal, after confirmation. */
export async function runForget(store: TokenStore, io: CliIo, memberId: string, yes: boolean): Promise<number> {
  if (!yes) {
    if (!io.isTTY || io.confirm === undefined) throw usageError('forget deletes every chain of the portal: pass --yes to confirm when not on a terminal');
    const record = await store.get(memberId);
    const what = record === undefined ? `portal ${memberId} (no portal chain stored)` : `portal ${memberId} (${record.domain})`;
    if (!(await io.confirm(`Delete every token chain of ${scrub(what)}? This cannot be undone. [y/N] `))) {
      io.err('nothing deleted\n');
      return ExitCode.Ok;
    }
  }
  const { deleted } = await forgetPortal(store, memberId);
  io.out(`${memberId}: ${deleted} record${deleted === 1 ? '' : 's'} deleted\n`);
  return ExitCode.Ok;
}

/** `rekey`: re-encrypts every record with the write key. */
export async function runRekey(store: TokenStore, io: CliIo, pageSize: number): Promise<number> {
  if (!(store instanceof EncryptedTokenStore)) {
    throw new CliError('rekey needs the encryption keys: set B24PT_KEYS=newId:base64,oldId:base64 (the first one writes)', ExitCode.Usage);
  }
  const result = await store.rekey({ pageSize });
  io.out(
    `rekey with ${store.writeKeyId}: ${result.scanned} scanned, ${result.rekeyed} re-encrypted, ${result.current} already current, ${result.conflicts} conflicts, ${result.vanished} vanished, ${result.failed.length} failed\n`,
  );
  for (const f of result.failed) io.out(`  failed ${f.memberId} ${f.chain}: key ${f.keyId ?? 'unknown'}, ${f.reason}\n`);
  if (result.conflicts > 0) io.out('  records kept changing; run rekey again\n');
  return result.failed.length > 0 || result.conflicts > 0 ? ExitCode.Failure : ExitCode.Ok;
}
