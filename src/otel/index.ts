/**
 * OpenTelemetry metrics and traces for a `PortalClientPool`: `instrumentPool(pool, { meter, tracer })`.
 * Needs the optional peer `@opentelemetry/api` (1.x), whose types only this entry uses; no other
 * entry of the package loads it.
 *
 * Also here: {@link OBSERVE_CHANNEL}, the `node:diagnostics_channel` on which everything the library
 * lets out (log calls, pool events, errors, HTTP answers) is published for APM agents and audits;
 * it needs no OpenTelemetry.
 * @packageDocumentation
 */

import type { Attributes, BatchObservableCallback, Counter, Histogram, Meter, Tracer } from '@opentelemetry/api';
import type { PoolEventMap, PoolEventName, PoolStats } from '../pool-events.js';

// The diagnostics channel (plain Node; no OpenTelemetry needed) and what it publishes
export { OBSERVE_CHANNEL } from '../observe.js';
export type {
  ErrorObservation,
  EventObservation,
  LogObservation,
  Observation,
  ObservedPool,
  PoolObservation,
  ResponseObservation,
} from '../observe.js';

/**
 * What `instrumentPool` needs of a pool: its events and its counters. A `PortalClientPool` fits.
 * @category Operations
 */
export interface InstrumentablePool {
  /** Subscribes to a typed pool event. */
  on<E extends PoolEventName>(event: E, listener: (payload: PoolEventMap[E]) => void): unknown;
  /** Unsubscribes a listener. */
  off<E extends PoolEventName>(event: E, listener: (payload: PoolEventMap[E]) => void): unknown;
  /** A snapshot of the pool's counters. */
  stats(): PoolStats;
}

/**
 * Options of {@link instrumentPool}: give a meter, a tracer, or both.
 * @category Operations
 */
export interface InstrumentPoolOptions {
  /** Records the metrics of {@link METRIC_NAMES}, such as `metrics.getMeter('my-app')`. */
  readonly meter?: Meter | undefined;
  /** Records one `b24pt.refresh` span per refresh, such as `trace.getTracer('my-app')`. */
  readonly tracer?: Tracer | undefined;
}

/**
 * The instrumentation of one pool.
 * @category Operations
 */
export interface PoolInstrumentation {
  /** Stops recording: unsubscribes from the pool's events and removes the observable callbacks. Idempotent. */
  close(): void;
}

/**
 * The names of the instruments {@link instrumentPool} creates (OpenTelemetry naming: a `b24pt.`
 * namespace, dot-separated, units in UCUM).
 * @category Operations
 */
export const METRIC_NAMES = {
  /** Counter `{refresh}`: refresh requests sent to an OAuth host, by `b24pt.refresh.reason` and `b24pt.refresh.outcome`. */
  refreshes: 'b24pt.refresh.count',
  /** Histogram `s`: from sending a refresh request to the pair stored, by reason and outcome. */
  refreshDuration: 'b24pt.refresh.duration',
  /** Counter `{adoption}`: pairs taken from the store instead of refreshing. */
  adoptions: 'b24pt.adoption.count',
  /** Observable counter `{request}`: requests re-sent with the current token after a 401 for a superseded one. */
  resentRequests: 'b24pt.request.resent.count',
  /** Counter `{chain}`: chains marked revoked or suspended, by `b24pt.chain.state` and `b24pt.oauth.error`. */
  revocations: 'b24pt.revocation.count',
  /** Counter `{rejection}`: refusals of the app's own credentials (once per pause), by `b24pt.oauth.error`. */
  credentialErrors: 'b24pt.credentials.rejected.count',
  /** Counter `{wait}`: waits for another holder of a chain's lock, by `b24pt.lock.outcome`. */
  lockWaits: 'b24pt.lock.wait.count',
  /** Histogram `s`: how long those waits took, by `b24pt.lock.outcome`. */
  lockWaitDuration: 'b24pt.lock.wait.duration',
  /** Observable counter `{lookup}`: `clientFor` calls answered from the cache. */
  cacheHits: 'b24pt.cache.hit.count',
  /** Observable counter `{lookup}`: `clientFor` calls that built a client (cache misses). */
  cacheMisses: 'b24pt.cache.miss.count',
  /** Counter `{client}`: clients dropped from the cache, by `b24pt.eviction.reason`. */
  evictions: 'b24pt.eviction.count',
  /** Gauge `{client}`: clients currently cached. */
  cachedClients: 'b24pt.client.cached',
} as const;

/** The span name of one refresh. @category Operations */
export const REFRESH_SPAN_NAME = 'b24pt.refresh';

const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** `SpanKind.CLIENT` and `SpanStatusCode.ERROR`, as values, so this module loads nothing at runtime. */
const SPAN_KIND_CLIENT = 2;
const STATUS_ERROR = 2;

type Subscription = () => void;

function listen<E extends PoolEventName>(pool: InstrumentablePool, event: E, listener: (payload: PoolEventMap[E]) => void): Subscription {
  pool.on(event, listener);
  return () => void pool.off(event, listener);
}

function metricsOf(pool: InstrumentablePool, meter: Meter): Subscription[] {
  const counter = (name: string, unit: string, description: string): Counter => meter.createCounter(name, { unit, description });
  const histogram = (name: string, description: string): Histogram =>
    meter.createHistogram(name, { unit: 's', description, advice: { explicitBucketBoundaries: SECONDS_BUCKETS } });
  const refreshes = counter(METRIC_NAMES.refreshes, '{refresh}', 'Refresh requests sent to an OAuth host');
  const refreshDuration = histogram(METRIC_NAMES.refreshDuration, 'Duration of a refresh, from the request to the stored pair');
  const adoptions = counter(METRIC_NAMES.adoptions, '{adoption}', 'Pairs adopted from the store instead of refreshing');
  const revocations = counter(METRIC_NAMES.revocations, '{chain}', 'Chains marked revoked or suspended');
  const credentialErrors = counter(METRIC_NAMES.credentialErrors, '{rejection}', 'Refusals of the app credentials by an OAuth host');
  const lockWaits = counter(METRIC_NAMES.lockWaits, '{wait}', 'Waits for another holder of a chain lock');
  const lockWaitDuration = histogram(METRIC_NAMES.lockWaitDuration, 'Duration of a wait for a chain lock');
  const evictions = counter(METRIC_NAMES.evictions, '{client}', 'Clients dropped from the cache');
  const resent = meter.createObservableCounter(METRIC_NAMES.resentRequests, { unit: '{request}', description: 'Requests re-sent with the current token' });
  const hits = meter.createObservableCounter(METRIC_NAMES.cacheHits, { unit: '{lookup}', description: 'clientFor calls answered from the cache' });
  const misses = meter.createObservableCounter(METRIC_NAMES.cacheMisses, { unit: '{lookup}', description: 'clientFor calls that built a client' });
  const cached = meter.createObservableGauge(METRIC_NAMES.cachedClients, { unit: '{client}', description: 'Clients currently cached' });
  const observe: BatchObservableCallback = (result) => {
    const stats = pool.stats();
    result.observe(resent, stats.resentRequests);
    result.observe(hits, stats.cacheHits);
    result.observe(misses, stats.clientsBuilt);
    result.observe(cached, stats.cachedClients);
  };
  meter.addBatchObservableCallback(observe, [resent, hits, misses, cached]);
  return [
    () => meter.removeBatchObservableCallback(observe, [resent, hits, misses, cached]),
    listen(pool, 'refresh-attempt', (e) => {
      const attributes: Attributes = { 'b24pt.refresh.reason': e.reason, 'b24pt.refresh.outcome': e.outcome };
      refreshes.add(1, attributes);
      refreshDuration.record(e.durationMs / 1000, attributes);
    }),
    listen(pool, 'adopted', () => adoptions.add(1)),
    listen(pool, 'revoked', (e) => revocations.add(1, { 'b24pt.chain.state': 'revoked', 'b24pt.oauth.error': e.reason })),
    listen(pool, 'suspended', (e) => revocations.add(1, { 'b24pt.chain.state': 'suspended', 'b24pt.oauth.error': e.reason })),
    listen(pool, 'credentials-rejected', (e) => credentialErrors.add(1, { 'b24pt.oauth.error': e.oauthError })),
    listen(pool, 'lock-wait', (e) => {
      lockWaits.add(1, { 'b24pt.lock.outcome': e.outcome });
      lockWaitDuration.record(e.waitedMs / 1000, { 'b24pt.lock.outcome': e.outcome });
    }),
    listen(pool, 'evicted', (e) => evictions.add(1, { 'b24pt.eviction.reason': e.reason })),
  ];
}

function tracesOf(pool: InstrumentablePool, tracer: Tracer): Subscription[] {
  return [
    listen(pool, 'refresh-attempt', (e) => {
      // Recorded when the refresh has ended, with its real start and end times.
      const span = tracer.startSpan(REFRESH_SPAN_NAME, {
        kind: SPAN_KIND_CLIENT,
        startTime: e.startedAt,
        attributes: {
          'b24pt.member_id': e.memberId,
          'b24pt.chain': e.chain,
          'b24pt.refresh.reason': e.reason,
          'b24pt.refresh.outcome': e.outcome,
        },
      });
      if (e.outcome !== 'refreshed') span.setStatus({ code: STATUS_ERROR, message: e.outcome });
      span.end(e.startedAt + e.durationMs);
    }),
  ];
}

/**
 * Records a pool's metrics (see {@link METRIC_NAMES}) on `meter` and one span per refresh
 * (`b24pt.refresh`, with `b24pt.member_id`, `b24pt.chain`, reason and outcome as attributes; never
 * a token) on `tracer`. Metrics carry no member id, so their cardinality stays bounded.
 *
 * @example
 * ```ts
 * import { metrics, trace } from '@opentelemetry/api';
 * import { instrumentPool } from 'b24-portal-tokens/otel';
 *
 * const instrumentation = instrumentPool(pool, { meter: metrics.getMeter('my-app'), tracer: trace.getTracer('my-app') });
 * // at shutdown
 * instrumentation.close();
 * ```
 * @category Operations
 */
export function instrumentPool(pool: InstrumentablePool, options: InstrumentPoolOptions): PoolInstrumentation {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { meter, tracer } = options;
  if (meter === undefined && tracer === undefined) throw new TypeError('instrumentPool needs a meter, a tracer, or both');
  const subscriptions = [...(meter === undefined ? [] : metricsOf(pool, meter)), ...(tracer === undefined ? [] : tracesOf(pool, tracer))];
  let closed = false;
  return {
    close() {
      if (closed) return;
      closed = true;
      for (const unsubscribe of subscriptions) unsubscribe();
    },
  };
}
