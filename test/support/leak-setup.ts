// Vitest setup file (every test file): collects what the library lets out and every secret the
// stand-in mints, and fails the file in afterAll when any minted secret is found in it.
// B24PT_LEAK_CHECK=off turns it off (for debugging a test that is not about leaks).

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterAll } from 'vitest';
import { OBSERVE_CHANNEL, type Observation } from '../../src/observe.js';
import { MINTED_SECRETS_CHANNEL, type MintedSecret } from '../../src/testing/fake-bitrix24/minted.js';
import { describeLeaks, findLeaks, SecretIndex } from './leak-check.js';

if (process.env['B24PT_LEAK_CHECK'] !== 'off') {
  const observations: Observation[] = [];
  const secrets = new SecretIndex();
  const onObservation = (message: unknown): void => {
    observations.push(message as Observation);
  };
  const onSecret = (message: unknown): void => {
    secrets.add(message as MintedSecret);
  };
  subscribe(OBSERVE_CHANNEL, onObservation);
  subscribe(MINTED_SECRETS_CHANNEL, onSecret);

  afterAll(() => {
    // A test worker runs many files (vitest's isolate is off) and runs this file again before each:
    // this file's listeners go with it.
    unsubscribe(OBSERVE_CHANNEL, onObservation);
    unsubscribe(MINTED_SECRETS_CHANNEL, onSecret);
    const leaks = findLeaks(observations, secrets);
    if (leaks.length > 0) throw new Error(describeLeaks(leaks));
  });
}
