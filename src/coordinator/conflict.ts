// The coordinator's writers follow the one conflict rule of the chain core (src/chains/write.ts).

export { afterConflict, sameChain, type ConflictOutcome, type WriteIntent } from '../chains/write.js';
