// The logger contract: the subset of pino's API the library calls, so a pino (or compatible) logger
// plugs in as is. The library only ever passes identifiers and counts, never token values.

import { PortalTokensError } from './errors/base.js';
import { observe } from './observe.js';

/**
 * A log method in pino's shape: a context object first, then an optional message.
 * @inline
 */
export type LogMethod = (context: Record<string, unknown>, message?: string) => void;

/** A pino-compatible logger: pass `pino()` or any object with these four methods. */
export interface Logger {
  /** Detailed flow (adoptions, cache hits). */
  debug: LogMethod;
  /** Notable events (refreshes, installs). */
  info: LogMethod;
  /** Something is off but handled (an unverified install, a lock takeover). */
  warn: LogMethod;
  /** A failure the operator should look at (a store failure, a revoked portal). */
  error: LogMethod;
}

const noop: LogMethod = () => undefined;

/** A logger that discards everything: pass it to turn the library's logging off. */
export const silentLogger: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });

function toConsole(write: (line: string) => void, level: string): LogMethod {
  return (context, message) => {
    let details: string;
    try {
      details = JSON.stringify(context);
    } catch {
      details = '{}';
    }
    write(`[b24-portal-tokens] ${level}: ${message ?? ''} ${details}`);
  };
}

/**
 * The default logger: warnings and errors on the console (stderr), debug and info dropped. Like
 * every logger of this library it only ever receives member ids, codes and counts, never a token.
 * Pass `silentLogger` to turn it off, or a pino-compatible logger of your own.
 */
export const consoleLogger: Logger = Object.freeze({
  debug: noop,
  info: noop,
  warn: toConsole((line) => console.warn(line), 'warn'),
  error: toConsole((line) => console.error(line), 'error'),
});

/**
 * What may be logged about an error: its class name, plus this library's code and message (which
 * never carry token values). Messages of foreign errors are left out, since a driver or a user's
 * hook may put values (tokens) in them.
 */
export function describeError(error: unknown): Record<string, string> {
  if (error instanceof PortalTokensError) return { name: error.name, code: error.code, message: error.message };
  if (error instanceof Error) return { name: error.name };
  return { name: typeof error };
}

const OBSERVED = Symbol.for('b24-portal-tokens.observedLogger');

/**
 * The logger with every call also published on `OBSERVE_CHANNEL` (see observe.ts). Idempotent: a
 * logger it returned is returned as is. The given logger's methods are called with the same arguments.
 */
export function observedLogger(logger: Logger): Logger {
  if ((logger as Partial<Record<typeof OBSERVED, true>>)[OBSERVED] === true) return logger;
  const wrap = (level: keyof Logger): LogMethod => {
    return (context, message) => {
      observe(() => ({ kind: 'log', level, context, message }));
      logger[level](context, message);
    };
  };
  return Object.freeze({ debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error'), [OBSERVED]: true as const });
}
