// One worker process of a multi-process storm (bench/storm.ts): warms its client, says "ready",
// fires its calls at once on "live", on "twice" (each call made twice in a row: the storm's floor)
// and on "go" (tokens expired, the last), printing {failed, latencies} as one JSON line each time.

import { createInterface } from 'node:readline';
import { caller, storm, twice, type Strategy } from './storm.js';
import { openStore, type StoreLocation } from './stores.js';
import { StormTrace, TRACING } from './storm-trace.js';

const [strategy, location, memberId, count] = process.argv.slice(2) as [Strategy, string, string, string];
const store = openStore(JSON.parse(location) as StoreLocation);
const trace = TRACING && strategy === 'pool' ? new StormTrace() : undefined;
const { call, close, lockWaits, resends } = await caller(
  strategy,
  store,
  { clientId: process.env['B24_CLIENT_ID']!, clientSecret: process.env['B24_CLIENT_SECRET']!, url: process.env['B24_URL']! },
  trace,
);
await call(memberId, 0).catch(() => false); // warm up before the token expires
process.stdout.write('ready\n');
const calls = (): (() => Promise<boolean>)[] => Array.from({ length: Number(count) }, (_, i) => () => call(memberId, i));
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'live' || line === 'twice') {
    // The storm with live tokens, for comparison; "twice": each call made twice in a row.
    process.stdout.write(`${JSON.stringify(await storm(line === 'live' ? calls() : twice(calls())))}\n`);
    continue;
  }
  // "go": the tokens expired.
  lockWaits?.(); // the live storms' waits (none expected) are not the storm's
  trace?.take();
  const resentBefore = resends?.() ?? 0;
  const result = await storm(calls());
  const extra = { lockWaits: lockWaits?.() ?? [], ...(resends === undefined ? {} : { resends: resends() - resentBefore }), ...(trace === undefined ? {} : { trace: trace.take() }) };
  process.stdout.write(`${JSON.stringify({ ...result, ...extra })}\n`);
  break;
}
await close();
await store.close?.();
process.exit(0);
