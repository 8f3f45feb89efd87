// The error of a bad argument: a value a caller passed that no part of the library can take.

import { ErrorCode, PortalTokensError, type PortalTokensErrorOptions } from './base.js';
import { escapeText } from './escape.js';

/**
 * An argument was refused before anything was read or written: `pool.clientFor('a'.repeat(101))`,
 * a member id with a lone surrogate or a control character. Bad input from the caller (a web app
 * maps it to 400), never a store failure; retrying with the same value fails the same way.
 */
export class InvalidArgumentError extends PortalTokensError {
  readonly code = ErrorCode.InvalidArgument;
  /** The refused argument's name, such as `memberId`. */
  readonly argument: string;
  /**
   * @param argument the argument's name.
   * @param problem what is wrong with it, in words (escaped into the message; never its value).
   */
  constructor(argument: string, problem: string, options: PortalTokensErrorOptions = {}) {
    super(`Invalid ${escapeText(argument)}: ${escapeText(problem)}`, options);
    this.argument = argument;
  }
}
