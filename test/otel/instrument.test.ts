// instrumentPool: metrics and spans of a real pool against the stand-in Bitrix24, read through the
// OpenTelemetry SDK's in-memory exporters.

import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instrumentPool, METRIC_NAMES, REFRESH_SPAN_NAME } from '../../src/otel/index.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { silentLogger } from '../../src/logger.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});

function setup() {
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
  const store = new MemoryTokenStore();
  const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger, lockWaitMs: 10_000 });
  const instrumentation = instrumentPool(pool, { meter: meterProvider.getMeter('test'), tracer: tracerProvider.getTracer('test') });
  const metrics = async (): Promise<MetricData[]> => {
    await reader.forceFlush();
    return metricExporter.getMetrics().at(-1)?.scopeMetrics.flatMap((s) => s.metrics) ?? [];
  };
  return { store, pool, instrumentation, metrics, spanExporter, meterProvider, tracerProvider };
}

function points(all: MetricData[], name: string) {
  const metric = all.find((m) => m.descriptor.name === name);
  return metric?.dataPoints ?? [];
}

function sum(all: MetricData[], name: string, attributes: Record<string, string> = {}): number {
  let total = 0;
  for (const p of points(all, name)) {
    if (Object.entries(attributes).every(([k, v]) => p.attributes[k] === v)) total += typeof p.value === 'number' ? p.value : p.value.count;
  }
  return total;
}

describe('instrumentPool', () => {
  it('counts refreshes by reason and outcome, times them, and records one span each without a token', async () => {
    const { store, pool, metrics, spanExporter, instrumentation, meterProvider } = setup();
    const portal = b24.addPortal();
    const seeded = await seedStore(store, b24, portal.memberId, { expired: true });
    const client = await pool.clientFor(portal.memberId);
    expect((await client.actions.v2.call.make({ method: 'profile' })).isSuccess).toBe(true);
    await pool.clientFor(portal.memberId);

    const revokedPortal = b24.addPortal();
    await seedStore(store, b24, revokedPortal.memberId, { expired: true });
    b24.revoke(revokedPortal.memberId);
    const revokedClient = await pool.clientFor(revokedPortal.memberId);
    await revokedClient.actions.v2.call.make({ method: 'profile' }).catch(() => undefined);

    const all = await metrics();
    expect(sum(all, METRIC_NAMES.refreshes, { 'b24pt.refresh.outcome': 'refreshed' })).toBe(1);
    expect(sum(all, METRIC_NAMES.refreshes, { 'b24pt.refresh.outcome': 'revoked' })).toBe(1);
    expect(sum(all, METRIC_NAMES.refreshDuration)).toBe(2);
    expect(sum(all, METRIC_NAMES.revocations, { 'b24pt.chain.state': 'revoked', 'b24pt.oauth.error': 'invalid_grant' })).toBe(1);
    expect(sum(all, METRIC_NAMES.cacheHits)).toBe(1);
    expect(sum(all, METRIC_NAMES.cacheMisses)).toBe(2);
    expect(sum(all, METRIC_NAMES.cachedClients)).toBe(pool.stats().cachedClients);
    const duration = all.find((m) => m.descriptor.name === METRIC_NAMES.refreshDuration);
    expect(duration?.descriptor.unit).toBe('s');
    for (const metric of all) for (const p of metric.dataPoints) expect(Object.values(p.attributes)).not.toContain(portal.memberId);

    const spans = spanExporter.getFinishedSpans().filter((s) => s.name === REFRESH_SPAN_NAME);
    expect(spans).toHaveLength(2);
    const ok = spans.find((s) => s.attributes['b24pt.member_id'] === portal.memberId);
    expect(ok?.attributes).toMatchObject({ 'b24pt.chain': 'portal', 'b24pt.refresh.outcome': 'refreshed' });
    expect(spans.find((s) => s.attributes['b24pt.member_id'] === revokedPortal.memberId)?.status.code).toBe(2);
    const serialized = JSON.stringify(spans.map((s) => ({ attributes: s.attributes, events: s.events, status: s.status })));
    expect(serialized).not.toContain(seeded.chain.refreshToken);
    expect(serialized).not.toMatch(/[0-9a-f]{70}/);

    instrumentation.close();
    instrumentation.close();
    await pool.close();
    await meterProvider.shutdown();
  });

  it('counts and times a wait for another holder of the lock', async () => {
    const { store, pool, metrics, meterProvider, instrumentation } = setup();
    const portal = b24.addPortal();
    await seedStore(store, b24, portal.memberId, { expired: true });
    const lease = await store.tryLock({ memberId: portal.memberId, chain: 'portal' }, 60_000);
    expect(lease).toBeDefined();
    const client = await pool.clientFor(portal.memberId);
    const call = client.actions.v2.call.make({ method: 'profile' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await lease!.release();
    expect((await call).isSuccess).toBe(true);
    const all = await metrics();
    expect(sum(all, METRIC_NAMES.lockWaits, { 'b24pt.lock.outcome': 'acquired' })).toBe(1);
    expect(sum(all, METRIC_NAMES.lockWaitDuration)).toBe(1);
    instrumentation.close();
    await pool.close();
    await meterProvider.shutdown();
  });

  it('needs a meter or a tracer', () => {
    const pool = new PortalClientPool({ store: new MemoryTokenStore(), clientId: 'a', clientSecret: 'b', logger: silentLogger });
    expect(() => instrumentPool(pool, {})).toThrow(/meter, a tracer/);
  });
});
