// The conformance suite's change-feed cases against a correct in-process feed (a MemoryTokenStore
// wrapped to publish its writes): proves the cases pass on a store that honours the feed's rules.
import { describeTokenStore } from '../../src/testing/conformance.js';
import { FeedMemoryStore } from './fixtures/feed-store.js';

await describeTokenStore('MemoryTokenStore with a change feed', { create: () => new FeedMemoryStore() });
