// The checks at the pool's door: a member id a caller passes (often taken from a request URL) is
// refused as bad input before any store is asked, so a value no store can take never comes back as a
// store failure.

import { InvalidArgumentError } from '../errors.js';
import { LINE_BREAKING } from '../errors/escape.js';

/**
 * The longest member id the pool takes, in UTF-8 bytes: what every store of this library can key
 * (the file store's names carry at most 100 bytes). Bitrix24's own are 32 hex characters.
 */
export const MAX_MEMBER_ID_BYTES = 100;


/**
 * Checks a member id argument: a non-empty, well-formed (no lone surrogate) string of at most
 * {@link MAX_MEMBER_ID_BYTES} UTF-8 bytes without control characters.
 * @throws InvalidArgumentError (`INVALID_ARGUMENT`) naming the argument; the value is not in the message.
 */
export function checkMemberIdArgument(memberId: unknown, argument = 'memberId'): asserts memberId is string {
  if (typeof memberId !== 'string' || memberId.length === 0) throw new InvalidArgumentError(argument, 'must be a non-empty string');
  if (!memberId.isWellFormed()) throw new InvalidArgumentError(argument, 'must be well-formed Unicode (no lone surrogates)');
  if (LINE_BREAKING.test(memberId)) throw new InvalidArgumentError(argument, 'must not hold control characters or line separators');
  if (Buffer.byteLength(memberId, 'utf8') > MAX_MEMBER_ID_BYTES) {
    throw new InvalidArgumentError(argument, `must be at most ${MAX_MEMBER_ID_BYTES} UTF-8 bytes`);
  }
}

/**
 * Checks an optional user id argument: absent, or a positive safe integer.
 * @throws InvalidArgumentError (`INVALID_ARGUMENT`) naming the argument.
 */
export function checkUserIdArgument(userId: unknown, argument = 'userId'): asserts userId is number | undefined {
  if (userId !== undefined && !(Number.isSafeInteger(userId) && (userId as number) >= 1)) {
    throw new InvalidArgumentError(argument, 'must be a positive safe integer');
  }
}
