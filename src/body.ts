// Request and answer bodies as they arrive: the limits, the one classifier that tells form from JSON
// (shared by the parser and the lifecycle handler, so they cannot disagree), and the one bounded reader.

/**
 * The default body limit of the lifecycle handler, the adapters and the parser: 64 KiB. Real
 * lifecycle events are well under 2 KiB; the margin only covers long scopes and custom domains.
 */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

/** The largest answer read from an OAuth host: 256 KiB (real ones are under 2 KiB). */
export const MAX_OAUTH_ANSWER_BYTES = 256 * 1024;

/** The form media type. */
export const FORM_MEDIA_TYPE = 'application/x-www-form-urlencoded';

/** The JSON media type (any `application/*+json` counts as JSON too). */
export const JSON_MEDIA_TYPE = 'application/json';

/** What a raw body is read as. */
export type TextFormat = 'form' | 'json';

/** What a body is: raw text of a format, an object a framework already parsed, or unsupported. */
export type BodyKind = TextFormat | 'parsed' | 'unsupported';

/**
 * The format a `Content-Type` names: `form`, `json`, `unsupported`, or `undefined` when it is absent
 * or empty (then the body is sniffed).
 */
export function formatOfContentType(contentType: string | undefined): TextFormat | 'unsupported' | undefined {
  if (contentType === undefined) return undefined;
  const mediaType = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  if (mediaType === '') return undefined;
  if (mediaType === FORM_MEDIA_TYPE) return 'form';
  if (mediaType === JSON_MEDIA_TYPE || /^application\/[a-z0-9.+-]*\+json$/.test(mediaType)) return 'json';
  return 'unsupported';
}

/** Sniffs decoded text: JSON when its first character other than whitespace or a byte-order mark is `{`. */
export function sniffTextFormat(text: string): TextFormat {
  return /^[\s\uFEFF]*\{/.test(text) ? 'json' : 'form';
}

const SNIFF_BYTES = 64;
const lenientUtf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/**
 * Classifies a body the way the parser reads it. Text and bytes: by `contentType`, or sniffed when
 * there is none (bytes are decoded as UTF-8 first, so a byte-order mark before `{` is JSON, as the
 * parser sees it). A `URLSearchParams` is a form; any other object was parsed by a framework.
 * No body at all counts as a form (the parser then reports the missing fields).
 */
export function classifyBody(contentType: string | undefined, body: unknown): BodyKind {
  const raw = typeof body === 'string' || body instanceof Uint8Array || body instanceof ArrayBuffer;
  // A framework's body parser already took responsibility for the content type.
  if (!raw && body !== undefined) return body instanceof URLSearchParams ? 'form' : 'parsed';
  const declared = formatOfContentType(contentType);
  if (declared !== undefined) return declared;
  if (body === undefined) return 'form';
  if (typeof body === 'string') return sniffTextFormat(body.slice(0, SNIFF_BYTES));
  const bytes = body instanceof ArrayBuffer ? new Uint8Array(body) : body;
  return sniffTextFormat(lenientUtf8.decode(bytes.subarray(0, SNIFF_BYTES)));
}

/** The size of a raw body in bytes (UTF-8 for text); 0 for a parsed one. */
export function rawByteLength(body: unknown): number {
  if (typeof body === 'string') return Buffer.byteLength(body, 'utf8');
  if (body instanceof Uint8Array || body instanceof ArrayBuffer) return body.byteLength;
  return 0;
}

/** What {@link readBounded} returns when the body passed its limit. */
export const TOO_LARGE = Symbol('too large');

/** Options of {@link readBounded}. */
export interface ReadBoundedOptions {
  /**
   * On passing the limit, end the source (`return()` on its iterator: a web stream is cancelled).
   * `false` leaves it unread instead, for a Node request whose socket must stay open for the 413.
   * @defaultValue true
   */
  readonly cancel?: boolean | undefined;
}

/**
 * Reads a body of byte chunks (a web `ReadableStream`, a Node request, any async iterable) into
 * one array, or stops as soon as it passes `limit` bytes. A read error rejects.
 * @returns the bytes, `undefined` for an empty body, or {@link TOO_LARGE}.
 */
export async function readBounded(
  source: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
  limit: number,
  options: ReadBoundedOptions = {},
): Promise<Uint8Array | undefined | typeof TOO_LARGE> {
  const iterator: AsyncIterator<Uint8Array, unknown> =
    'getReader' in source ? readerIterator(source.getReader()) : source[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const step = await iterator.next();
    if (step.done === true) break;
    const value = step.value;
    total += value.byteLength;
    if (total > limit) {
      if (options.cancel ?? true) await iterator.return?.().catch(() => undefined);
      return TOO_LARGE;
    }
    chunks.push(value);
  }
  if (total === 0) return undefined;
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** A web stream's reader as an iterator (not every runtime makes streams async-iterable). */
function readerIterator(reader: ReadableStreamDefaultReader<Uint8Array>): AsyncIterator<Uint8Array> {
  return {
    next: async () => {
      const { done, value } = await reader.read();
      return done ? { done: true, value: undefined } : { done: false, value };
    },
    return: async () => {
      await reader.cancel();
      return { done: true, value: undefined };
    },
  };
}

/** Whether an announced `content-length` already exceeds `limit`. */
export function announcedTooLarge(contentLength: string | null | undefined, limit: number): boolean {
  const announced = Number(contentLength ?? NaN);
  return Number.isFinite(announced) && announced > limit;
}
