// A trace of one storm in one process, for the profile of row 6 (bench/storm-profile.ts): when each
// REST request left and when its answer came (node:http's diagnostics channels, so whatever the
// SDK's axios does is seen as it reaches the socket), and when the pool refreshed, adopted or
// waited for another worker's lock. Times are absolute (ms since the epoch, sub-ms), so the traces
// of several processes line up.

import * as dc from 'node:diagnostics_channel';
import type { PortalClientPool } from '../src/pool/pool.js';

/** One thing that happened during a storm. */
export type TraceEvent =
  | { readonly at: number; readonly kind: 'send'; readonly id: number }
  | { readonly at: number; readonly kind: 'answer'; readonly id: number; readonly status: number }
  | { readonly at: number; readonly kind: 'refresh'; readonly startedAt: number; readonly durationMs: number }
  | { readonly at: number; readonly kind: 'store'; readonly method: string; readonly startedAt: number; readonly ok: boolean }
  | { readonly at: number; readonly kind: 'adopted' | 'lock-wait' | 'call-start' | 'call-end' };

/** Whether this process traces its storms (set by the profile for its workers). */
export const TRACING = process.env['B24_STORM_TRACE'] === '1';

const now = (): number => performance.timeOrigin + performance.now();

/** Collects trace events from now on; `take` hands them over and starts afresh. */
export class StormTrace {
  #events: TraceEvent[] = [];
  readonly #ids = new WeakMap<object, number>();
  #next = 0;

  constructor() {
    dc.subscribe('http.client.request.start', (message: unknown) => {
      const { request } = message as { request: { path?: string } };
      if (request.path?.includes('/oauth/') === true) return;
      const id = this.#next++;
      this.#ids.set(request, id);
      this.#events.push({ at: now(), kind: 'send', id });
    });
    dc.subscribe('http.client.response.finish', (message: unknown) => {
      const { request, response } = message as { request: object; response: { statusCode?: number } };
      const id = this.#ids.get(request);
      if (id !== undefined) this.#events.push({ at: now(), kind: 'answer', id, status: response.statusCode ?? 0 });
    });
  }

  /** Follows the pool's refreshes, adoptions and lock waits. */
  watch(pool: PortalClientPool): void {
    pool.on('refresh-attempt', (e) => this.#events.push({ at: now(), kind: 'refresh', startedAt: e.startedAt, durationMs: e.durationMs }));
    pool.on('adopted', () => this.mark('adopted'));
    pool.on('lock-wait', () => this.mark('lock-wait'));
  }

  /** The store, its reads, locks and writes traced (each call's start and end). */
  wrap<S extends object>(store: S): S {
    const push = (method: string, startedAt: number, ok: boolean): void => void this.#events.push({ at: now(), kind: 'store', method, startedAt, ok });
    return new Proxy(store, {
      get(target, name, receiver) {
        const value: unknown = Reflect.get(target, name, receiver);
        if (typeof value !== 'function' || !['get', 'tryLock', 'update'].includes(String(name))) return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          const startedAt = now();
          try {
            const out: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            push(String(name), startedAt, out !== undefined);
            return out;
          } catch (error) {
            push(String(name), startedAt, false);
            throw error;
          }
        };
      },
    });
  }

  /** Records a moment of the caller's. */
  mark(kind: 'call-start' | 'call-end' | 'adopted' | 'lock-wait'): void {
    this.#events.push({ at: now(), kind });
  }

  /** The events so far; the trace starts afresh. */
  take(): TraceEvent[] {
    return this.#events.splice(0);
  }
}
