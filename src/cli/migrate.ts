// `migrate`: copies every record (portal and user chains) from one store to another with version
// continuity, resumably, then verifies counts and reports records that changed during the copy.
//
// The rule: a record is written with `upsert` and then, while its version is below the source's,
// bumped with empty conditional writes, so the target's version ends equal to the source's (or
// above it, when the target already held that chain, or its tombstone, at a higher version).
// A conditional write based on a version read from the source therefore never lands on an older
// pair in the target. A record already present with the same content and a version at least the
// source's is skipped: a run interrupted at any point is resumed by running it again.

import type { ChainRef, PortalRecord, PortalRecordInput, TokenStore } from '../store/token-store.js';
import { describeFailure, scrub, usageError } from './errors.js';
import { progress, type CliIo } from './io.js';
import { countPortals } from './count.js';

/** Options of {@link runMigrate}. */
export interface MigrateOptions {
  /** Count what would be copied; write nothing. */
  readonly dryRun: boolean;
  /** Records per `list` call. */
  readonly pageSize: number;
  /** Portals copied at once. */
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
  /** Chains whose source record changed (or vanished) while it was copied. */
  changed: { memberId: string; chain: string; note: string }[];
  /** Portals listed in the source before the copy, during it, and after it. */
  portalsBefore: number;
  portalsCopied: number;
  portalsAfter: number;
  /** Chains counted in the target at the end (0 in a dry run). */
  targetCount: number;
}

const COMPARED: readonly (keyof PortalRecord)[] = [
  'domain', 'clientEndpoint', 'serverEndpoint', 'accessToken', 'refreshToken', 'expires', 'scope', 'status', 'userId',
  'applicationToken', 'state', 'revokedReason', 'installedAt', 'updatedAt', 'chainUpdatedAt', 'revokedAt', 'eventTs',
];

/** Whether two records hold the same content (versions aside). */
export function sameContent(a: PortalRecord, b: PortalRecord): boolean {
  return COMPARED.every((field) => a[field] === b[field]);
}

function inputOf(record: PortalRecord): PortalRecordInput {
  const input: Record<string, unknown> = { chain: record.chain, memberId: record.memberId };
  for (const field of COMPARED) input[field] = record[field];
  return input as unknown as PortalRecordInput;
}

/** Every chain of the store, a portal at a time; the user chains of a page are read `parallel` at once. */
export async function* allChains(store: TokenStore, pageSize: number, parallel = 4): AsyncGenerator<PortalRecord[]> {
  const list = store.list?.bind(store);
  const listChains = store.listChains?.bind(store);
  if (!store.capabilities.list || list === undefined || listChains === undefined) {
    throw usageError('the store cannot list its records');
  }
  let after: string | undefined;
  do {
    const page = await list({ after, limit: pageSize });
    for (let i = 0; i < page.records.length; i += parallel) {
      const batch = page.records.slice(i, i + parallel);
      const chains = await Promise.all(batch.map((record) => listChains(record.memberId)));
      for (let j = 0; j < batch.length; j++) yield [batch[j]!, ...chains[j]!];
    }
    after = page.next;
  } while (after !== undefined);
}

/** Counts every chain of a store. */
export async function countChains(store: TokenStore, pageSize: number, parallel = 4): Promise<number> {
  let n = 0;
  for await (const chains of allChains(store, pageSize, parallel)) n += chains.length;
  return n;
}

type Outcome = 'copied' | 'present';

/** Copies one chain; returns what it did. */
async function copyOne(from: TokenStore, to: TokenStore, record: PortalRecord, dryRun: boolean, result: MigrateResult): Promise<Outcome> {
  const key: ChainRef = { memberId: record.memberId, chain: record.chain };
  const existing = await to.get(key);
  if (existing !== undefined && existing.version >= record.version && sameContent(existing, record)) return 'present';
  if (dryRun) return 'copied';
  let written = await to.upsert(inputOf(record));
  while (written.version < record.version) {
    const bumped = await to.update(key, written.version, {});
    if (!bumped.ok) throw new Error('another writer changed the target record during the copy');
    written = bumped.record;
  }
  const again = await from.get(key);
  if (again === undefined) {
    result.changed.push({ memberId: record.memberId, chain: record.chain, note: 'deleted in the source during the copy; the target keeps the copy' });
  } else if (again.version !== record.version) {
    result.changed.push({ memberId: record.memberId, chain: record.chain, note: `changed in the source during the copy (version ${record.version} -> ${again.version}); run migrate again` });
  }
  return 'copied';
}

/** Runs a migration; writes progress to stderr and returns the result. */
export async function runMigrate(from: TokenStore, to: TokenStore, io: CliIo, options: MigrateOptions): Promise<MigrateResult> {
  const result: MigrateResult = { scanned: 0, copied: 0, present: 0, failed: [], changed: [], portalsBefore: 0, portalsCopied: 0, portalsAfter: 0, targetCount: 0 };
  const bar = progress(io, options.dryRun ? 'checking' : 'migrating');
  result.portalsBefore = await countPortals(from, options.pageSize);
  bar.total(result.portalsBefore);
  const running = new Set<Promise<void>>();
  const portal = async (chains: PortalRecord[]): Promise<void> => {
    for (const record of chains) {
      result.scanned++;
      try {
        result[await copyOne(from, to, record, options.dryRun, result)]++;
      } catch (error) {
        result.failed.push({ memberId: record.memberId, chain: record.chain, reason: describeFailure(error) });
      }
    }
    result.portalsCopied++;
    bar.tick();
  };
  try {
    for await (const chains of allChains(from, options.pageSize, options.concurrency)) {
      const job: Promise<void> = portal(chains).finally(() => running.delete(job));
      running.add(job);
      if (running.size >= options.concurrency) await Promise.race(running);
    }
    await Promise.all(running);
  } finally {
    bar.stop();
  }
  result.portalsAfter = await countPortals(from, options.pageSize);
  result.targetCount = options.dryRun ? 0 : await countChains(to, options.pageSize, options.concurrency);
  return result;
}

/** The report lines of a migration. */
export function migrateReport(r: MigrateResult, dryRun: boolean): { text: string; ok: boolean } {
  const lines: string[] = [];
  const verb = dryRun ? 'would copy' : 'copied';
  lines.push(`${r.scanned} chains read: ${verb} ${r.copied}, already present ${r.present}, failed ${r.failed.length}`);
  for (const f of r.failed) lines.push(`  failed  ${f.memberId} ${f.chain}: ${scrub(f.reason)}`);
  for (const c of r.changed) lines.push(`  changed ${c.memberId} ${c.chain}: ${c.note}`);
  let ok = r.failed.length === 0 && r.changed.length === 0;
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
