// `migrate`: copies every record (portal and user chains, a user's chain without its portal's
// included where the source can list it) from one store to another with version continuity,
// resumably, then verifies counts and reports records that changed during the copy.
//
// What to write is decided by src/chains/copy.ts: a chain the target does not hold is created, one
// that is behind the source's is replaced with a conditional write, and one that moved on in the
// target (a newer pair or version: its app refreshed it since the last run) is left as it is and
// reported as a conflict, so running migrate twice never writes a spent pair back. Versions end at
// least at the source's, so a conditional write based on a source read never lands on an older
// pair. A record that cannot be read is named and skipped; the walk goes on.

import type { TokenStore } from '../store/token-store.js';
import { describeUnreadable, walkStore, walksEveryChain } from '../store/walk.js';
import { copyChain, sameContent } from '../chains/copy.js';
import { describeFailure, scrub } from './errors.js';
import { progress, type CliIo } from './io.js';
import { countPortals } from './count.js';

export { sameContent };

/** Options of {@link runMigrate}. */
export interface MigrateOptions {
  /** Count what would be copied; write nothing. */
  readonly dryRun: boolean;
  /** Records per `list` call. */
  readonly pageSize: number;
  /** Chains copied at once. */
  readonly concurrency: number;
}

/** What a migration did. */
export interface MigrateResult {
  /** Source chains seen. */
  scanned: number;
  /** Chains written (or, in a dry run, that would be). */
  copied: number;
  /** Chains already present in the target with the same content. */
  present: number;
  /** Chains that could not be copied, with the reason (never a token). */
  failed: { memberId: string; chain: string; reason: string }[];
  /** Chains the target holds newer than the source's: left as they are. */
  conflicts: { memberId: string; chain: string; reason: string }[];
  /** Source records that could not be read (left out of the copy). */
  unreadable: string[];
  /** Chains whose source record changed (or vanished) while it was copied. */
  changed: { memberId: string; chain: string; note: string }[];
  /** Portal chains listed in the source before the copy, during it, and after it. */
  portalsBefore: number;
  portalsCopied: number;
  portalsAfter: number;
  /** Chains counted in the target at the end (0 in a dry run). */
  targetCount: number;
  /** Whether the walk saw every chain (the source store lists them all). */
  complete: boolean;
}

/** Counts every chain of a store (readable or not). */
export async function countChains(store: TokenStore, pageSize: number): Promise<number> {
  let n = 0;
  for await (const page of walkStore(store, { pageSize, userChains: true })) n += page.records.length + page.unreadable.length;
  return n;
}

/** Runs a migration; writes progress to stderr and returns the result. */
export async function runMigrate(from: TokenStore, to: TokenStore, io: CliIo, options: MigrateOptions): Promise<MigrateResult> {
  const result: MigrateResult = {
    scanned: 0, copied: 0, present: 0, failed: [], conflicts: [], unreadable: [], changed: [],
    portalsBefore: 0, portalsCopied: 0, portalsAfter: 0, targetCount: 0, complete: walksEveryChain(from),
  };
  const bar = progress(io, options.dryRun ? 'checking' : 'migrating');
  result.portalsBefore = await countPortals(from, options.pageSize);
  bar.total(result.portalsBefore);
  const running = new Set<Promise<void>>();
  const copyOne = async (record: Parameters<typeof copyChain>[1] & { version: number }): Promise<void> => {
    try {
      const outcome = await copyChain(to, record, { dryRun: options.dryRun });
      if (outcome.kind === 'conflict') {
        result.conflicts.push({ memberId: record.memberId, chain: record.chain ?? 'portal', reason: outcome.reason });
        return;
      }
      result[outcome.kind === 'copied' ? 'copied' : 'present']++;
      if (outcome.kind !== 'copied' || options.dryRun) return;
      const again = await from.get({ memberId: record.memberId, chain: record.chain ?? 'portal' });
      if (again === undefined) {
        result.changed.push({ memberId: record.memberId, chain: record.chain ?? 'portal', note: 'deleted in the source during the copy; the target keeps the copy' });
      } else if (again.version !== record.version) {
        result.changed.push({ memberId: record.memberId, chain: record.chain ?? 'portal', note: `changed in the source during the copy (version ${record.version} -> ${again.version}); run migrate again` });
      }
    } catch (error) {
      result.failed.push({ memberId: record.memberId, chain: record.chain ?? 'portal', reason: describeFailure(error) });
    }
  };
  try {
    for await (const page of walkStore(from, { pageSize: options.pageSize, userChains: true })) {
      for (const item of page.unreadable) {
        result.unreadable.push(describeUnreadable(item));
        if (item.chain === 'portal') result.portalsCopied++;
      }
      for (const record of page.records) {
        result.scanned++;
        if (record.chain === 'portal') {
          result.portalsCopied++;
          bar.tick();
        }
        const job: Promise<void> = copyOne(record).finally(() => running.delete(job));
        running.add(job);
        if (running.size >= options.concurrency) await Promise.race(running);
      }
    }
    await Promise.all(running);
  } finally {
    bar.stop();
  }
  result.portalsAfter = await countPortals(from, options.pageSize);
  result.targetCount = options.dryRun ? 0 : await countChains(to, options.pageSize);
  return result;
}

/** The report lines of a migration. */
export function migrateReport(r: MigrateResult, dryRun: boolean): { text: string; ok: boolean } {
  const lines: string[] = [];
  const verb = dryRun ? 'would copy' : 'copied';
  lines.push(`${r.scanned} chains read: ${verb} ${r.copied}, already present ${r.present}, conflicts ${r.conflicts.length}, failed ${r.failed.length}, unreadable ${r.unreadable.length}`);
  for (const f of r.failed) lines.push(`  failed  ${f.memberId} ${f.chain}: ${scrub(f.reason)}`);
  for (const c of r.conflicts) lines.push(`  conflict ${c.memberId} ${c.chain}: ${scrub(c.reason)}`);
  for (const u of r.unreadable) lines.push(`  unreadable ${u}`);
  for (const c of r.changed) lines.push(`  changed ${c.memberId} ${c.chain}: ${c.note}`);
  if (!r.complete) lines.push('  this source store cannot list every chain (no listAll): a user\u2019s chain whose portal has no portal chain is not copied');
  let ok = r.failed.length === 0 && r.changed.length === 0 && r.conflicts.length === 0 && r.unreadable.length === 0;
  const stable = r.portalsBefore === r.portalsCopied && r.portalsAfter === r.portalsCopied;
  if (!stable) {
    lines.push(`  the source listed ${r.portalsBefore} portals before the copy, ${r.portalsCopied} during it and ${r.portalsAfter} after: stop the writers and run migrate again`);
    ok = false;
  }
  if (!dryRun) {
    const countsOk = r.targetCount >= r.scanned;
    lines.push(`verify: source ${r.portalsCopied} portals, ${r.scanned} chains; target ${r.targetCount} chains: ${countsOk ? 'ok' : 'MISMATCH (run migrate again)'}`);
    ok &&= countsOk;
  }
  return { text: lines.join('\n') + '\n', ok };
}
