// Options given to the library: the error for one that is not what it must be, the checks run when
// options are given (so a bad one is refused at construction, not met later inside a timer), and
// the call of a function given as an option (its throw becomes the caller's typed error).

import { ErrorCode, PortalTokensError, type PortalTokensErrorOptions } from './base.js';

/**
 * An option is not what it must be: refused when the options are given (a `spool` without `drain`,
 * a `logger` without its four methods, a negative timeout), or met when a function given as an
 * option is called (a `requestBudget(memberId)` that throws or returns invalid limits). Then only
 * the call that needed it fails with this error; the process and other portals carry on.
 */
export class InvalidOptionsError extends PortalTokensError {
  readonly code = ErrorCode.InvalidOptions;
  /** The option at fault (`'spool'`, `'requestBudget'`, `'logger'`, ...). */
  readonly option: string;
  constructor(option: string, message: string, options: PortalTokensErrorOptions = {}) {
    super(message, options);
    this.option = option;
  }
}

/** The option's top-level name (`backoff` of `backoff.transientMinMs`, `spool` of `options.spool`). */
function optionName(name: string): string {
  return name.replace(/^options\./, '').split(/[.(]/)[0] ?? name;
}

/** Throws {@link InvalidOptionsError} unless `value` is `undefined` or a function. */
export function checkOptionalFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new InvalidOptionsError(optionName(name), `${name} must be a function`);
  }
}

/**
 * Throws {@link InvalidOptionsError} unless `value` is `undefined` or an object whose `methods` are
 * functions (what `what` names, for the message).
 */
export function checkOptionalMethods(name: string, value: unknown, methods: readonly string[], what: string): void {
  if (value === undefined) return;
  const missing =
    value === null || typeof value !== 'object'
      ? methods
      : methods.filter((method) => typeof (value as Record<string, unknown>)[method] !== 'function');
  if (missing.length > 0) {
    throw new InvalidOptionsError(optionName(name), `${name} must be ${what} (missing: ${missing.join(', ')})`);
  }
}

/**
 * Calls a function given as option `name`; a throw becomes {@link InvalidOptionsError} (the
 * function's own error kept as `cause`, never in the message).
 */
export function callOption<T>(name: string, call: () => T, options: PortalTokensErrorOptions = {}): T {
  try {
    return call();
  } catch (error) {
    if (error instanceof InvalidOptionsError) throw error;
    throw new InvalidOptionsError(optionName(name), `${name} threw`, { ...options, cause: error });
  }
}
