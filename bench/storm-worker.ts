// One worker process of a multi-process storm (bench/storm.ts): warms its client, says "ready",
// fires its calls at once on "live" and again on "go" (tokens expired), printing
// {failed, latencies} as one JSON line each time.

import { createInterface } from 'node:readline';
import { caller, storm, type Strategy } from './storm.js';
import { openStore, type StoreLocation } from './stores.js';
import { StormTrace, TRACING } from './storm-trace.js';

const [strategy, location, memberId, count] = process.argv.slice(2) as [Strategy, string, string, string];
const store = openStore(JSON.parse(location) as StoreLocation);
const trace = TRACING && strategy === 'pool' ? new StormTrace() : undefined;
const { call, close, lockWaits } = await caller(
  strategy,
  store,
  { clientId: process.env['B24_CLIENT_ID']!, clientSecret: process.env['B24_CLIENT_SECRET']!, url: process.env['B24_URL']! },
  trace,
);
await call(memberId, 0).catch(() => false); // warm up before the token expires
process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
await lines.next(); // "live": the storm with live tokens, for comparison
const live = await storm(Array.from({ length: Number(count) }, (_, i) => () => call(memberId, i)));
process.stdout.write(`${JSON.stringify(live)}\n`);
lockWaits?.(); // the live storm's waits (none expected) are not the storm's
await lines.next(); // "go": the tokens expired
trace?.take();
const result = await storm(Array.from({ length: Number(count) }, (_, i) => () => call(memberId, i)));
process.stdout.write(`${JSON.stringify({ ...result, lockWaits: lockWaits?.() ?? [], ...(trace === undefined ? {} : { trace: trace.take() }) })}\n`);
await close();
await store.close?.();
process.exit(0);
