// `import-recipe`: reads the b24jssdk install recipe's `.oauth-store.json`: one JSON object keyed by
// member id, each value the recipe's `B24OAuthParams` (applicationToken, userId, memberId,
// accessToken, refreshToken, expires, expiresIn, scope, domain, clientEndpoint, serverEndpoint,
// status), and stores each portal's chain. A value it cannot map is listed with the reason, never
// guessed at; a portal the target already holds is left as it is.

import { readFile } from 'node:fs/promises';
import type { PortalRecordInput, TokenStore } from '../store/token-store.js';
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
    return url.protocol === 'https:' && url.username === '' && url.password === '' && url.pathname.endsWith('/');
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
  if (!endpoint(v['clientEndpoint'])) return 'clientEndpoint is not an https URL ending in /';
  if (!endpoint(v['serverEndpoint'])) return 'serverEndpoint is not an https URL ending in /';
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

/** Imports every entry into the store. */
export async function runImport(entries: Record<string, unknown>, to: TokenStore, io: CliIo, options: { dryRun: boolean; now: number }): Promise<ImportResult> {
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
        if ((await to.get(key)) !== undefined) {
          result.present.push(key);
          continue;
        }
        if (!options.dryRun) await to.upsert(mapped);
        result.imported.push(key);
      } catch (error) {
        result.rejected.push({ memberId: key, reason: describeFailure(error) });
      }
    }
  } finally {
    bar.stop();
  }
  return result;
}
