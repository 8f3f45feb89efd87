// Row 6's cluster line: the same in-process refresh storm (several portals, concurrent calls each,
// every access token expired) on a three-primary Redis Cluster and on one Redis, side by side. When
// no cluster answers on the nodes (.ci/services/redis-cluster.sh starts one), prints a notice and
// adds no row.

import { Redis } from 'ioredis';
import type { FakeBitrix24 } from '../src/testing/fake-bitrix24.js';
import { progress, row, type Row } from './lib.js';
import { inProcess } from './storm.js';
import { REDIS_CLUSTER_NODES } from './stores.js';

async function clusterUp(): Promise<boolean> {
  const first = new URL(REDIS_CLUSTER_NODES[0] ?? 'redis://127.0.0.1:7001');
  const probe = new Redis(Number(first.port), first.hostname, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return /cluster_state:ok/.test(String(await probe.call('CLUSTER', 'INFO')));
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/** Adds the cluster storm rows, or prints why not. */
export async function clusterStormRows(rows: Row[], b24: FakeBitrix24, short: boolean): Promise<void> {
  if (!(await clusterUp())) {
    console.log(`Notice: no Redis Cluster answers at ${REDIS_CLUSTER_NODES.join(', ')}: the cluster storm row is skipped (start one with .ci/services/redis-cluster.sh)`);
    return;
  }
  const portals = short ? 10 : 50;
  const calls = short ? 5 : 20;
  const scenario = `1 process, ${portals} portals x ${calls} calls`;
  const single = await inProcess(b24, 'redis', 'pool', portals, calls, scenario);
  const cluster = await inProcess(b24, 'redis-cluster', 'pool', portals, calls, scenario);
  progress(`storm redis-cluster ${scenario}: wall ${cluster.wallMs.toFixed(0)} ms (one Redis ${single.wallMs.toFixed(0)} ms); refreshes ${cluster.refreshRequests}; failed ${cluster.failed}`);
  rows.push(
    row({
      row: 6,
      measure: `storm, Redis Cluster (3 primaries) store, ${scenario}: wall time, pool`,
      value: cluster.wallMs,
      unit: 'ms',
      baseline: single.wallMs,
      baselineName: 'same storm, one Redis',
      target: null,
      pass: null,
      note: `p99 ${cluster.p99Ms.toFixed(1)} ms (one Redis ${single.p99Ms.toFixed(1)} ms)`,
    }),
    row({
      row: 6,
      measure: `storm, Redis Cluster (3 primaries) store, ${scenario}: refresh requests, pool`,
      value: cluster.refreshRequests,
      unit: '',
      baseline: single.refreshRequests,
      baselineName: 'one Redis',
      target: `= ${portals} (one per portal), 0 failed`,
      pass: cluster.refreshRequests === portals && cluster.reuse === 0 && cluster.failed === 0,
      note: `reuse ${cluster.reuse}; failed ${cluster.failed} of ${cluster.calls}`,
    }),
  );
}
