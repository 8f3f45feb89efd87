/**
 * Test helpers for apps built on b24-portal-tokens: the TokenStore conformance suite and a
 * stand-in Bitrix24 (OAuth server and portals' REST on one loopback port).
 * @packageDocumentation
 */

// The TokenStore conformance suite (registers vitest tests for any store)
export { describeTokenStore } from './conformance.js';
export type { CrossProcessOptions, TokenStoreSuiteOptions } from './conformance.js';

// The stand-in Bitrix24 (OAuth server and portals' REST on one loopback port)
export { FakeBitrix24, DEFAULT_FAKE_CLIENT_ID, DEFAULT_FAKE_CLIENT_SECRET, seedStore, standInTrust } from './fake-bitrix24.js';
export type { StandInTrust } from './fake-bitrix24.js';
export { MINTED_SECRETS_CHANNEL } from './fake-bitrix24/minted.js';
export type { MintedSecret } from './fake-bitrix24/minted.js';
export type {
  AppPageRequestOptions,
  AuthorizeOptions,
  ExpireOptions,
  FakeAppPageRequest,
  FakeAuthorization,
  FakeBitrix24Options,
  FakeBitrix24Stats,
  FakeChain,
  FakeEventData,
  FakeEventPayload,
  FakeLifecycleEvent,
  FakePortal,
  FakePortalOptions,
  FakeRestContext,
  FakeRestEvent,
  FakeRestEventPayload,
  FakeRestMethod,
  FakeRestOutcome,
  FakeTokenStatus,
  FakeUninstallEvent,
  FakeUserOptions,
  InstallEventOptions,
  IssueChainOptions,
  OAuthFailure,
  OperatingExhaustion,
  RestEventOptions,
  SeededChain,
  SeedStoreOptions,
  UninstallEventOptions,
  UpdateEventOptions,
} from './fake-bitrix24.js';
