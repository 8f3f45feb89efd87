// A stand-in Bitrix24 for tests: the OAuth server and every portal's REST API on one loopback port.
// The implementation lives in ./fake-bitrix24/, one module per role; this file is its public face.
//
//   stand-in.ts      the FakeBitrix24 class (delegates to everything below)
//   seed.ts          seedStore: a TokenStore seeded from a stand-in chain
//   router.ts        the loopback server: read, decode, route
//   oauth-server.ts  /oauth/token/ and the OAuth host's app.info
//   portal-rest.ts   /portals/<domain>/: token judging, error shapes, 302, consent page
//   rest-methods.ts  built-in REST methods (profile, user.admin, batch, ...) and custom ones
//   payloads.ts      lifecycle and REST event bodies
//   app-page.ts      the app-page request and the authorization-code consent
//   runtime.ts       test knobs (failures, delays, custom methods) and timers
//   ledger.ts        portals, users, tokens and codes
//   http.ts, php-form.ts, util.ts, stats.ts, options.ts, types.ts: leaves

export { FakeBitrix24, standInTrust } from './fake-bitrix24/stand-in.js';
export type { StandInTrust } from './fake-bitrix24/stand-in.js';
export { seedStore } from './fake-bitrix24/seed.js';
export type { OperatingExhaustion } from './fake-bitrix24/operating-limit.js';
export type { SeedStoreOptions, SeededChain } from './fake-bitrix24/seed.js';
export type { FakeBitrix24Stats } from './fake-bitrix24/stats.js';
export type {
  AppPageRequestOptions,
  AuthorizeOptions,
  ExpireOptions,
  FakeBitrix24Options,
  FakePortalOptions,
  FakeUserOptions,
  InstallEventOptions,
  IssueChainOptions,
  RestEventOptions,
  UninstallEventOptions,
  UpdateEventOptions,
} from './fake-bitrix24/options.js';
export { DEFAULT_FAKE_CLIENT_ID, DEFAULT_FAKE_CLIENT_SECRET } from './fake-bitrix24/types.js';
export type {
  FakeAppPageRequest,
  FakeAuthorization,
  FakeChain,
  FakeEventData,
  FakeEventPayload,
  FakeLifecycleEvent,
  FakePortal,
  FakeRestContext,
  FakeRestEvent,
  FakeRestEventPayload,
  FakeRestMethod,
  FakeRestOutcome,
  FakeTokenStatus,
  FakeUninstallEvent,
  OAuthFailure,
} from './fake-bitrix24/types.js';
