// Puts the pool's interceptors on a chain's SDK client: one HTTP client per REST version the SDK
// speaks. Here, not in the pool, so every value import of @bitrix24/b24jssdk stays inside src/sdk/.

import { ApiVersion, type B24OAuth } from '@bitrix24/b24jssdk';
import type { ResolvedRestRootRules } from '../guard/rest-roots.js';
import { interceptHttpClient, type InterceptedChain } from './interceptors.js';

/**
 * Intercepts every REST request of `client` (v2 and v3) for `chain` (budget, token, moves), sending
 * it only to a REST root `restRoots` allows (the interceptors' default rules when not given).
 */
export function interceptSdkClient(client: B24OAuth, chain: InterceptedChain, restRoots?: ResolvedRestRootRules): void {
  for (const version of [ApiVersion.v2, ApiVersion.v3]) interceptHttpClient(client.getHttpClient(version), chain, restRoots);
}
