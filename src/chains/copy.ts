// The one place a bulk copy (the CLI's migrate and import-recipe) decides what to write over a
// target store. A copy never writes over a target chain that moved on: it writes where the target
// holds nothing, or a chain that is behind the copied one (older pair, lower or equal version), and
// then only with a conditional write based on what it read; anything else is a reported conflict.

import type { ChainRef, PortalRecord, PortalRecordInput, PortalRecordPatch, TokenStore } from '../store/token-store.js';

/** The fields a copy carries (everything but the key and the version). */
export const COPIED_FIELDS = [
  'domain', 'clientEndpoint', 'serverEndpoint', 'accessToken', 'refreshToken', 'expires', 'scope', 'status', 'userId',
  'applicationToken', 'state', 'revokedReason', 'installedAt', 'updatedAt', 'chainUpdatedAt', 'revokedAt', 'eventTs',
] as const satisfies readonly (keyof PortalRecord)[];

/** What a copy of one chain should do with the target's record. */
export type CopyDecision =
  /** Nothing stored there: create it. */
  | { readonly kind: 'create' }
  /** The target holds this very content already. */
  | { readonly kind: 'present' }
  /** The target's chain is behind the copied one: replace it, conditionally on the version read. */
  | { readonly kind: 'replace'; readonly expectedVersion: number }
  /** The target's chain moved on (a newer pair or version): left as it is, reported. */
  | { readonly kind: 'conflict'; readonly reason: string };

/** The copied chain as the copy sees it: a source record (with its version) or an input (without). */
export type CopiedChain = PortalRecordInput & { readonly version?: number | undefined };

/** Whether two records hold the same content (versions aside). */
export function sameContent(a: CopiedChain, b: CopiedChain): boolean {
  return COPIED_FIELDS.every((field) => (a[field] ?? null) === (b[field] ?? null));
}

/**
 * Decides what to do with `target` (the target store's record of the chain, or `undefined`) when
 * copying `copied`. The target moved on when its pair changed after the copied one's
 * (`chainUpdatedAt`) or its version is past the copied record's: a copy then writes nothing.
 */
export function decideCopy(copied: CopiedChain, target: PortalRecord | undefined): CopyDecision {
  if (target === undefined) return { kind: 'create' };
  if (sameContent(copied, target) && (copied.version === undefined || target.version >= copied.version)) return { kind: 'present' };
  if (target.chainUpdatedAt > copied.chainUpdatedAt) {
    return { kind: 'conflict', reason: `the target's chain moved on (its pair changed ${new Date(target.chainUpdatedAt).toISOString()}, after the copied one's): left as it is` };
  }
  if (copied.version !== undefined && target.version > copied.version) {
    return { kind: 'conflict', reason: `the target's chain moved on (version ${target.version}, the source's is ${copied.version}): left as it is` };
  }
  return { kind: 'replace', expectedVersion: target.version };
}

/** The outcome of {@link copyChain}. */
export type CopyOutcome =
  | { readonly kind: 'copied'; readonly record: PortalRecord }
  | { readonly kind: 'present' }
  | { readonly kind: 'conflict'; readonly reason: string };

function inputOf(chain: CopiedChain): PortalRecordInput {
  const input: Record<string, unknown> = { memberId: chain.memberId, chain: chain.chain ?? 'portal' };
  for (const field of COPIED_FIELDS) input[field] = chain[field] ?? null;
  return input as unknown as PortalRecordInput;
}

function patchOf(chain: CopiedChain): PortalRecordPatch {
  const patch: Record<string, unknown> = {};
  for (const field of COPIED_FIELDS) patch[field] = chain[field] ?? null;
  return patch;
}

/**
 * Copies one chain into `to` by the rule of {@link decideCopy}. A record with a version ends with a
 * version at least the source's (empty conditional writes after the write), so a conditional write
 * based on a read from the source never lands on an older pair in the target. In a dry run nothing
 * is written and the decision is reported as if it had been.
 */
export async function copyChain(to: TokenStore, copied: CopiedChain, options: { readonly dryRun?: boolean | undefined } = {}): Promise<CopyOutcome> {
  const key: ChainRef = { memberId: copied.memberId, chain: copied.chain ?? 'portal' };
  const target = await to.get(key);
  const decision = decideCopy(copied, target);
  if (decision.kind === 'present' || decision.kind === 'conflict') return decision;
  if (options.dryRun === true) return { kind: 'copied', record: { ...inputOf(copied), chain: key.chain, eventTs: copied.eventTs ?? null, version: copied.version ?? 1 } };
  let written: PortalRecord;
  if (decision.kind === 'create') {
    // Nothing was stored: a writer that created it meanwhile is overwritten only by an equal-or-newer
    // chain, checked again below through the version walk.
    written = await to.upsert(inputOf(copied));
  } else {
    const result = await to.update(key, decision.expectedVersion, patchOf(copied));
    if (!result.ok) return { kind: 'conflict', reason: 'the target\u2019s chain changed while it was copied: left as it is' };
    written = result.record;
  }
  while (copied.version !== undefined && written.version < copied.version) {
    const bumped = await to.update(key, written.version, {});
    if (!bumped.ok) return { kind: 'conflict', reason: 'another writer changed the target\u2019s chain during the copy: left as it is' };
    written = bumped.record;
  }
  return { kind: 'copied', record: written };
}
