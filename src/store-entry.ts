/**
 * `b24-portal-tokens/store`: what a store author needs to write a {@link TokenStore} of their own,
 * and the option and result types of the built-in stores and the install spool.
 *
 * An app that only picks a store imports it from `b24-portal-tokens` (memory, file, encrypted) or
 * `b24-portal-tokens/stores/*` (PostgreSQL, Redis, SQLite). Check a store of your own with
 * `describeTokenStore` from `b24-portal-tokens/testing`.
 * @packageDocumentation
 */

// ── The contract: the methods a store implements ───────────────────────────────────────────────────
export type {
  TokenStore,
  StoreCapabilities,
  StoreLease,
  LockedRead,
  PortalListOptions,
  PortalListPage,
} from './store/token-store.js';

// ── The record a store keeps: one per portal and chain ─────────────────────────────────────────────
export { PORTAL_CHAIN, userChain, userIdOf } from './store/portal-record.js';
export type {
  AppStatus,
  PortalState,
  ChainId,
  ChainKey,
  ChainRef,
  PortalRecord,
  PortalRecordInput,
  ChainOfInput,
  PortalRecordPatch,
  ConditionalWriteResult,
  ConditionalWriteSuccess,
  ConditionalWriteConflict,
} from './store/portal-record.js';
export { portalRecordFromAuth } from './chains/record.js';
export type { PortalAuth } from './events/types.js';

// ── The argument checks the built-in stores run, for a store of your own to refuse the same input
// ── with the same typed errors (`InvalidArgumentError`, `StoreError`) the conformance suite expects
export {
  applyPatch,
  checkExpectedVersion,
  checkListOptions,
  checkMemberId,
  checkPatch,
  checkRecordInput,
  checkTtlMs,
  isChainId,
  nextVersion,
  readStoredRecord,
  resolveKey,
} from './store/record-checks.js';
export type { ResolvedKey } from './store/record-checks.js';

// ── The shared request budget and the change feed (optional parts of the contract) ─────────────────
export type { BudgetSpec, BudgetGrant } from './store/budget-types.js';
export type { StoreChange, StoreChangeListener, StoreSubscription } from './store/change-feed.js';

// ── The built-in stores' options, key rotation, and the install spool's options ────────────────────
export type { MemoryTokenStoreOptions } from './store/memory/store.js';
export type { FileTokenStoreOptions } from './store/file/store.js';
export type { EncryptedTokenStoreOptions } from './store/encrypted/store.js';
export type { TokenEncryptionKey, TokenEncryptionOptions } from './store/encrypted/token-cipher.js';
export type { RekeyFailure, RekeyOptions, RekeyResult } from './store/encrypted/rekey.js';
export type { FileInstallSpoolOptions, SpoolDrainResult, SpoolEncryptionOptions } from './spool/file-spool.js';
