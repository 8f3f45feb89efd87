// One place where everything the library lets out can be watched: every log call it makes, every
// pool event, every error it creates and every HTTP answer its handlers give are published on one
// `node:diagnostics_channel`. Nothing is published (and nothing is built) while nobody subscribes,
// so the cost in production is one `hasSubscribers` check per call. The test suite subscribes and
// checks that no token the stand-in Bitrix24 minted ever appears in any of it.

//
// A leaf: it imports nothing of the library, so errors (whose constructor publishes), the logger
// (`observedLogger` in logger.ts) and the HTTP answers can all publish without a loop of imports.

import { channel } from 'node:diagnostics_channel';

/** The name of the channel {@link Observation}s are published on. */
export const OBSERVE_CHANNEL = 'b24-portal-tokens:observe';

/** One thing the library let out, as published on {@link OBSERVE_CHANNEL}. */
export type Observation =
  | LogObservation
  | EventObservation
  | ErrorObservation
  | ResponseObservation
  | PoolObservation;

/** A log call the library made. */
export interface LogObservation {
  /** The discriminant. */
  readonly kind: 'log';
  /** The level it was logged at. */
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  /** The context object passed to the logger. */
  readonly context: unknown;
  /** The message, when one was given. */
  readonly message: string | undefined;
}

/** A pool event as emitted. */
export interface EventObservation {
  /** The discriminant. */
  readonly kind: 'event';
  /** The event's name. */
  readonly event: string;
  /** Its payload. */
  readonly payload: unknown;
}

/** An error of the library, at construction. */
export interface ErrorObservation {
  /** The discriminant. */
  readonly kind: 'error';
  /** The error. */
  readonly error: Error;
}

/** An HTTP answer a handler of the library produced. */
export interface ResponseObservation {
  /** The discriminant. */
  readonly kind: 'response';
  /** The status code. */
  readonly status: number;
  /** The headers, as the handler set them. */
  readonly headers: unknown;
  /** The body, as the handler sent it. */
  readonly body: unknown;
}

/** A pool was built (its `stats()` can be read later). */
export interface PoolObservation {
  /** The discriminant. */
  readonly kind: 'pool';
  /** The pool. */
  readonly pool: ObservedPool;
}

/** The part of a pool an observer may read. */
export interface ObservedPool {
  /** The pool's counters. */
  stats(): unknown;
}

const observeChannel = channel(OBSERVE_CHANNEL);

/** Publishes one observation when someone listens; a no-op otherwise. */
export function observe(observation: () => Observation): void {
  if (observeChannel.hasSubscribers) observeChannel.publish(observation());
}
