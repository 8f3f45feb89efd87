// `import-recipe`: reads the b24jssdk install recipe's `.oauth-store.json`: one JSON object keyed by
// member id, each value the recipe's `B24OAuthParams` (applicationToken, userId, memberId,
// accessToken, refreshToken, expires, expiresIn, scope, domain, clientEndpoint, serverEndpoint,
// status), and stores each portal's chain. A value it cannot map is listed with the reason, never
// guessed at. Each chain is proven at a trusted OAuth host before it is stored (refreshed: a dead
// one is refused, a live one yields a fresh pair, and the portal's id and REST root come from the
// host's answer); the copy rule of src/chains/copy.ts decides the rest: a store chain that is as new
// or newer is left as it is, a dead or older one is replaced by the proven pair.

import { readFile } from 'node:fs/promises';
import type { TokenResponse } from '../oauth/oauth-client.js';
import type { PortalRecordInput, TokenStore } from '../store/token-store.js';
import { copyChain } from '../chains/copy.js';
import { OAuthRejectedError } from '../errors.js';
import { CliError, describeFailure, ExitCode } from './errors.js';
import { progress, type CliIo } from './io.js';

/** What an import did. */
export interface ImportResult {
  imported: string[];
  /** Portals the target already held (left unchanged). */
  present: string[];
  /** Entries that could not be mapped or stored, with the reason (never a value). */
  rejected: { memberId: string; reason: string }[];
}

function text(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

function endpoint(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    // http is for on-premise portals and test stand-ins; where a token may go is decided when it is sent.
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.username === '' && url.password === '' && url.pathname.endsWith('/');
  } catch {
    return false;
  }
}

/** Maps one recipe entry, or says why it cannot. */
export function mapRecipeEntry(key: string, value: unknown, now: number): PortalRecordInput | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not an object';
  const v = value as Record<string, unknown>;
  if (key.trim() === '') return 'empty member id';
  if (v['memberId'] !== undefined && v['memberId'] !== key) return 'memberId differs from the key it is stored under';
  if (!text(v['refreshToken'])) return 'missing refresh token';
  if (!text(v['accessToken'])) return 'missing access token';
  const expires = v['expires'];
  if (typeof expires !== 'number' || !Number.isSafeInteger(expires) || expires <= 0) return 'missing or non-numeric expires';
  if (expires > 1e11) return 'expires is not in unix seconds';
  if (!text(v['domain']) || /[/\s@]/.test(v['domain'])) return 'missing or malformed domain';
  if (!endpoint(v['clientEndpoint'])) return 'clientEndpoint is not an http(s) URL ending in /';
  if (!endpoint(v['serverEndpoint'])) return 'serverEndpoint is not an http(s) URL ending in /';
  if (typeof v['scope'] !== 'string') return 'missing scope';
  if (!text(v['status'])) return 'missing status';
  const userId = v['userId'];
  if (userId !== undefined && userId !== null && (typeof userId !== 'number' || !Number.isSafeInteger(userId) || userId < 0)) {
    return 'userId is not a non-negative integer';
  }
  const applicationToken = v['applicationToken'];
  if (applicationToken !== undefined && applicationToken !== null && typeof applicationToken !== 'string') return 'applicationToken is not a string';
  const expiresIn = v['expiresIn'];
  const lifetime = typeof expiresIn === 'number' && Number.isSafeInteger(expiresIn) && expiresIn > 0 ? expiresIn : 3600;
  // The recipe keeps no time of the last refresh; the access token was issued `expiresIn` before it expires.
  const chainUpdatedAt = Math.min(now, (expires - lifetime) * 1000);
  return {
    memberId: key,
    chain: 'portal',
    domain: v['domain'],
    clientEndpoint: v['clientEndpoint'] as string,
    serverEndpoint: v['serverEndpoint'] as string,
    accessToken: v['accessToken'],
    refreshToken: v['refreshToken'],
    expires,
    scope: v['scope'],
    status: v['status'],
    userId: typeof userId === 'number' && userId > 0 ? userId : null,
    applicationToken: text(applicationToken) ? applicationToken : null,
    state: 'active',
    revokedReason: null,
    installedAt: chainUpdatedAt,
    updatedAt: now,
    chainUpdatedAt,
    revokedAt: null,
    eventTs: null,
  };
}

/** Reads the recipe file; throws a CliError that never quotes the file's content. */
export async function readRecipe(path: string): Promise<Record<string, unknown>> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(`cannot read ${path} (${code ?? 'error'}): give the path of the recipe's .oauth-store.json`, ExitCode.Usage);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new CliError(`${path} is not valid JSON (the recipe writes one JSON object keyed by member id)`, ExitCode.Failure);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CliError(`${path} does not hold a JSON object keyed by member id`, ExitCode.Failure);
  }
  return parsed as Record<string, unknown>;
}

/** Proves a mapped entry at the OAuth host: the stored pair, or why it cannot be stored. */
export type ProveChain = (entry: PortalRecordInput) => Promise<PortalRecordInput | string>;

/**
 * The proof of an imported chain: one refresh at the trusted OAuth host its `serverEndpoint` names
 * (`refresh` throws `UntrustedHostError` for any other). The fresh pair replaces the file's (the
 * old app's copy is spent from then on: stop it first); the portal's id, REST root and user come
 * from the host's answer, never from the file.
 */
export function proveByRefresh(refresh: (entry: PortalRecordInput) => Promise<TokenResponse>, now: () => number): ProveChain {
  return async (entry) => {
    let answer: TokenResponse;
    try {
      answer = await refresh(entry);
    } catch (error) {
      if (error instanceof OAuthRejectedError) {
        return `the OAuth host refused the chain (${error.oauthError}): it is dead, most likely refreshed by the old app since the file was written; stop that app and export again`;
      }
      return describeFailure(error);
    }
    if (answer.memberId !== undefined && answer.memberId !== entry.memberId) return 'the OAuth host names another portal for this chain';
    const at = now();
    return {
      ...entry,
      accessToken: answer.accessToken,
      refreshToken: answer.refreshToken ?? entry.refreshToken,
      expires: answer.expires,
      scope: answer.scope ?? entry.scope,
      status: answer.status ?? entry.status,
      clientEndpoint: answer.clientEndpoint ?? entry.clientEndpoint,
      userId: answer.userId ?? entry.userId,
      state: 'active',
      revokedReason: null,
      revokedAt: null,
      updatedAt: at,
      chainUpdatedAt: at,
    };
  };
}

/** Options of {@link runImport}. */
export interface ImportOptions {
  /** Check every entry; write nothing (and prove nothing). */
  readonly dryRun: boolean;
  /** The time, unix ms. */
  readonly now: number;
  /** Proves each chain before it is stored (required unless `dryRun`). */
  readonly prove?: ProveChain | undefined;
}

/** Imports every entry into the store. */
export async function runImport(entries: Record<string, unknown>, to: TokenStore, io: CliIo, options: ImportOptions): Promise<ImportResult> {
  const result: ImportResult = { imported: [], present: [], rejected: [] };
  const keys = Object.keys(entries);
  const bar = progress(io, options.dryRun ? 'checking' : 'importing');
  bar.total(keys.length);
  try {
    for (const key of keys) {
      bar.tick();
      const mapped = mapRecipeEntry(key, entries[key], options.now);
      if (typeof mapped === 'string') {
        result.rejected.push({ memberId: key, reason: mapped });
        continue;
      }
      try {
        const stored = await to.get(key);
        // The store's chain is as new as the file's or newer (its app refreshed it since): keep it,
        // and spend nothing at the OAuth host.
        if (stored !== undefined && stored.state === 'active' && stored.chainUpdatedAt >= mapped.chainUpdatedAt) {
          result.present.push(key);
          continue;
        }
        if (options.dryRun) {
          result.imported.push(key);
          continue;
        }
        if (options.prove === undefined) throw new CliError('import-recipe proves each chain at the OAuth host: the app credentials are needed', ExitCode.Usage);
        const proven = await options.prove(mapped);
        if (typeof proven === 'string') {
          result.rejected.push({ memberId: key, reason: proven });
          continue;
        }
        const outcome = await copyChain(to, proven);
        if (outcome.kind === 'copied') result.imported.push(key);
        else if (outcome.kind === 'present') result.present.push(key);
        else result.rejected.push({ memberId: key, reason: outcome.reason });
      } catch (error) {
        if (error instanceof CliError) throw error;
        result.rejected.push({ memberId: key, reason: describeFailure(error) });
      }
    }
  } finally {
    bar.stop();
  }
  return result;
}
