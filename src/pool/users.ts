// The app page's chains (rememberUser, reseed) are decided by the chain core (src/chains/page.ts).

export { rememberUser, reseed, visit, type RememberUserContext, type VisitOutcome } from '../chains/page.js';
