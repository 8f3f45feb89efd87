// Vitest setup file (every test file): collects what the library lets out and every secret the
// stand-in mints, and fails the file in afterAll when any minted secret is found in it.
// B24PT_LEAK_CHECK=off turns it off (for debugging a test that is not about leaks).

import { subscribe } from 'node:diagnostics_channel';
import { afterAll } from 'vitest';
import { OBSERVE_CHANNEL, type Observation } from '../../src/observe.js';
import { MINTED_SECRETS_CHANNEL, type MintedSecret } from '../../src/testing/fake-bitrix24/minted.js';
import { describeLeaks, findLeaks, SecretIndex } from './leak-check.js';

if (process.env['B24PT_LEAK_CHECK'] !== 'off') {
  let observations: Observation[] = [];
  let secrets = new SecretIndex();
  subscribe(OBSERVE_CHANNEL, (message) => {
    observations.push(message as Observation);
  });
  subscribe(MINTED_SECRETS_CHANNEL, (message) => {
    secrets.add(message as MintedSecret);
  });

  afterAll(() => {
    const leaks = findLeaks(observations, secrets);
    observations = [];
    secrets = new SecretIndex();
    if (leaks.length > 0) throw new Error(describeLeaks(leaks));
  });
}
