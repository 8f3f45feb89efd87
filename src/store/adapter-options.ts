// The option checks every database adapter's constructor shares: an options object holding exactly
// one of its two ways to reach the database, and the positive integers among the settings.

/**
 * Checks that `options` is an object holding exactly one of `a` and `b` (a connection the store opens,
 * or one the caller passes in); a TypeError names them, never a value.
 */
export function checkOneOf(options: unknown, a: string, b: string): Record<string, unknown> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const given = options as Record<string, unknown>;
  if ((given[a] === undefined) === (given[b] === undefined)) throw new TypeError(`options must have exactly one of ${a} and ${b}`);
  return given;
}

/** `value` when it is a positive safe integer, `undefined` when it is absent; otherwise a TypeError naming `name`. */
export function positiveInteger(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new TypeError(`${name} must be a positive integer`);
  return value as number;
}
