// Caller-supplied text (a member id from a request URL, a chain or key id read back from a store, an
// error string a remote host answered) as it may appear inside an error message: every control
// character, line or paragraph separator, lone surrogate and backslash escaped, and a long value cut,
// so a message printed by a log can neither be split into forged lines nor grow without bound.

/** The longest stretch of caller-supplied text a message carries, in UTF-16 units (the rest is cut with `…`). */
export const MAX_MESSAGE_TEXT = 200;

const SHORT_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };

/** C0 and C1 controls, DEL and the Unicode line and paragraph separators: what may split a log line. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
export const LINE_BREAKING = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

// The above, the backslash, and a surrogate not part of a pair.
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\\]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * `value` as text safe to put in an error message: `\n`, `\r`, `\t` and `\\` as their escapes, other
 * unsafe characters as `\uXXXX`, cut to {@link MAX_MESSAGE_TEXT} units. A value that is not a string
 * is shown by its type. The error's own fields (`memberId`, ...) keep the raw value.
 */
export function escapeText(value: unknown): string {
  if (typeof value !== 'string') return `<${value === null ? 'null' : typeof value}>`;
  let text = value;
  let cut = false;
  if (text.length > MAX_MESSAGE_TEXT) {
    text = text.slice(0, MAX_MESSAGE_TEXT);
    cut = true;
  }
  const escaped = text.replace(UNSAFE, (char) => SHORT_ESCAPES[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return cut ? `${escaped}…` : escaped;
}
