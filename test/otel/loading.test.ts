// @opentelemetry/api is an optional peer: neither the root entry nor /otel itself loads it (the
// /otel entry only uses its types; the caller hands in the meter and tracer).

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, expect, it } from 'vitest';
import { DIST_WAIT_MS, distReady } from '../support/dist.js';

beforeAll(distReady, DIST_WAIT_MS); // dist/ may still be building (test/global-setup.ts)

const root = fileURLToPath(new URL('../..', import.meta.url));

it('loading b24-portal-tokens and b24-portal-tokens/otel loads no @opentelemetry module', () => {
  const code = `require('b24-portal-tokens'); const otel = require('b24-portal-tokens/otel'); const loaded = Object.keys(require.cache).filter((f) => /@opentelemetry/.test(f)); console.log(JSON.stringify({ loaded, instrumentPool: typeof otel.instrumentPool }));`;
  const out = execFileSync(process.execPath, ['-e', code], { cwd: root, encoding: 'utf8' });
  expect(JSON.parse(out.trim())).toEqual({ loaded: [], instrumentPool: 'function' });
});
