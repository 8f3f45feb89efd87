// The pool's typed events: every one is also published for observers (src/observe.ts), and a
// listener that throws is logged, never allowed to break the pool.

import { EventEmitter } from 'node:events';
import { describeError, type Logger } from '../logger.js';
import { observe } from '../observe.js';
import type { CoordinatorHooks } from '../coordinator/types.js';
import type { PoolEventMap, PoolEventName } from '../pool-events.js';

/** The typed event emitter behind `PortalClientPool.on` and `off`. */
export class PoolEmitter {
  readonly #emitter = new EventEmitter();
  readonly #logger: Logger;

  /** Logs listener failures on `logger`. */
  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Adds a listener. */
  on<E extends PoolEventName>(event: E, listener: (payload: PoolEventMap[E]) => void): void {
    this.#emitter.on(event, listener);
  }

  /** Removes a listener. */
  off<E extends PoolEventName>(event: E, listener: (payload: PoolEventMap[E]) => void): void {
    this.#emitter.off(event, listener);
  }

  /** Publishes an event to observers and calls each listener, catching and logging what it throws. */
  emit<E extends PoolEventName>(event: E, payload: PoolEventMap[E]): void {
    this.#publish(event, payload);
  }

  /** The coordinator's hook: its events are the pool's too (`PoolEventMap` extends `CoordinatorEventMap`). */
  readonly fromCoordinator: CoordinatorHooks['emit'] = (event, payload) => {
    this.#publish(event, payload);
  };

  #publish(event: PoolEventName, payload: unknown): void {
    observe(() => ({ kind: 'event', event, payload }));
    for (const listener of this.#emitter.listeners(event)) {
      try {
        (listener as (p: unknown) => void)(payload);
      } catch (error) {
        this.#logger.warn({ event, err: describeError(error) }, 'a pool event listener threw');
      }
    }
  }
}
