// The profile of row 6's storm (the pool only): where a storm call's time goes, and how many
// requests each process sent that the portal refused (401) and when, against the moments the
// refresh began and ended (in whichever process made it).
//
//   npx tsx bench/storm-profile.ts [stores=file,postgres,redis] [processes=4] [callsEach=25] [rounds=1]
//
// Per process it prints: requests sent and refused; when its first 401 came back; how many
// requests left after that and were still refused (avoidable inside the process), after the
// refresh began anywhere (avoidable by a worker that knew the lock was held) and after the new pair
// was written (avoidable by a worker that knew of the write); when it adopted the new pair; when
// its last call ended. Times in ms from the storm's first call.

import { FakeBitrix24 } from '../src/testing/fake-bitrix24.js';
import { inProcess, multiProcess, type StormResult } from './storm.js';
import { StormTrace, type TraceEvent } from './storm-trace.js';
import type { StoreKind } from './stores.js';

process.env['B24_STORM_TRACE'] = '1';
const [storeArg, processArg, callsArg, roundsArg] = process.argv.slice(2);
const stores = (storeArg ?? 'file,postgres,redis').split(',') as StoreKind[];
const processes = Number(processArg ?? 4);
const callsEach = Number(callsArg ?? 25);
const rounds = Number(roundsArg ?? 1);

const f = (ms: number): string => ms.toFixed(0).padStart(4);

function analyse(label: string, result: StormResult): void {
  const traces = result.traces ?? [];
  const all = traces.flat();
  const go = Math.min(...all.filter((e) => e.kind === 'call-start').map((e) => e.at));
  const refreshes = all.filter((e): e is Extract<TraceEvent, { kind: 'refresh' }> => e.kind === 'refresh');
  const refreshStart = Math.min(...refreshes.map((e) => e.startedAt));
  const refreshEnd = Math.min(...refreshes.map((e) => e.at));
  console.log(
    `${label}: p50 ${result.p50Ms.toFixed(0)} / p99 ${result.p99Ms.toFixed(0)} ms (live p99 ${result.liveP99Ms.toFixed(0)}); refreshes ${result.refreshRequests}; ` +
      `refresh began ${f(refreshStart - go)}, pair written ${f(refreshEnd - go)}`,
  );
  let total401 = 0;
  traces.forEach((trace, p) => {
    const sends = new Map<number, number>();
    const answers = new Map<number, { at: number; status: number }>();
    for (const e of trace) {
      if (e.kind === 'send') sends.set(e.id, e.at);
      if (e.kind === 'answer') answers.set(e.id, { at: e.at, status: e.status });
    }
    const refused = [...answers].filter(([, a]) => a.status === 401);
    total401 += refused.length;
    const first401 = Math.min(...refused.map(([, a]) => a.at));
    const sentOf = (id: number): number => sends.get(id) ?? 0;
    const after = (t: number): number => refused.filter(([id]) => sentOf(id) > t).length;
    const firstAnswers = refused.map(([id, a]) => a.at - sentOf(id)).sort((a, b) => a - b);
    const lastSend401 = Math.max(...refused.map(([id]) => sentOf(id)));
    const storeCalls = trace
      .filter((e): e is Extract<TraceEvent, { kind: 'store' }> => e.kind === 'store')
      .map((e) => `${e.method}${e.ok ? '' : '-'} ${(e.startedAt - go).toFixed(0)}+${(e.at - e.startedAt).toFixed(0)}`);
    const adopted = trace.find((e) => e.kind === 'adopted' || e.kind === 'refresh');
    const ends = trace.filter((e) => e.kind === 'call-end').map((e) => e.at);
    const starts = trace.filter((e) => e.kind === 'call-start').map((e) => e.at);
    console.log(
      `  process ${p}: sent ${sends.size}, refused ${refused.length}; calls started ${f(Math.min(...starts) - go)}..${f(Math.max(...starts) - go)}; ` +
        `401 sends ${f(Math.min(...refused.map(([id]) => sentOf(id))) - go)}..${f(lastSend401 - go)}, answered in p50 ${f(firstAnswers[Math.floor(firstAnswers.length / 2)] ?? 0)}; ` +
        `first 401 back ${f(first401 - go)}; refused after: own 401 ${after(first401)}, refresh began ${after(refreshStart)}, pair written ${after(refreshEnd)}; ` +
        `new pair here ${adopted === undefined ? '   -' : f(adopted.at - go)}; last call ended ${f(Math.max(...ends) - go)}`,
    );
    console.log(`    store calls (start+ms): ${storeCalls.join(', ')}`);
  });
  console.log(`  401s in all: ${total401} of ${result.calls} calls`);
}

const b24 = await FakeBitrix24.start();
try {
  for (let round = 0; round < rounds; round++) {
    for (const kind of stores) {
      const trace = new StormTrace();
      analyse(`${kind}, 1 process x ${processes * callsEach}`, await inProcess(b24, kind, 'pool', 1, processes * callsEach, 'profile', trace));
      analyse(`${kind}, ${processes} processes x ${callsEach}`, await multiProcess(b24, kind, 'pool', processes, callsEach, 'profile'));
    }
  }
} finally {
  await b24.close();
}
