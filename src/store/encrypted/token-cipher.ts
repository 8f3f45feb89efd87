// The one AES-256-GCM scheme for tokens at rest, shared by EncryptedTokenStore and the install spool.
// A sealed value is one string, `v2.<keyId>.<iv>.<ciphertext+tag>` (base64url), kept in the token's own
// field so no store needs a schema change. The record's memberId, chain and field name, the key id and
// (v2) every field that decides where the token is sent (domain, clientEndpoint, serverEndpoint) are
// bound in as associated data: a value moved to another record, chain or field, or a record re-pointed
// elsewhere, fails to open. `v1` values (no destination bound; the previous format) still open.

import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { DecryptionError, type DecryptionFailureReason } from '../../errors.js';

/**
 * One AES-256 key: exactly 32 bytes, as a `Uint8Array` (a `Buffer` is one) or as a base64 or
 * base64url string of those 32 bytes (such as the output of `openssl rand -base64 32`).
 */
export type TokenEncryptionKey = Uint8Array | string;

/**
 * Keys for encrypting tokens at rest: every key that may have written a stored value (they all
 * read), and the id of the one that writes.
 */
export interface TokenEncryptionOptions {
  /**
   * Keys by id. An id is 1 to 32 characters of `A-Z a-z 0-9 _ -`; it is stored beside every value
   * (it is not secret). Keep a retired key here until `rekey()` has reported that nothing uses it.
   */
  readonly keys: Readonly<Record<string, TokenEncryptionKey>>;
  /** The id (in `keys`) of the key that encrypts every value written from now on. */
  readonly writeKeyId: string;
}

/** The token fields that are encrypted. */
export const TOKEN_FIELDS = ['accessToken', 'refreshToken', 'applicationToken'] as const;

/** One of {@link TOKEN_FIELDS}. */
export type TokenField = (typeof TOKEN_FIELDS)[number];

/** The fields of a record that decide where its tokens are sent; bound into every `v2` value. */
export interface SealBinding {
  /** The portal's domain. */
  readonly domain: string;
  /** The portal's REST root. */
  readonly clientEndpoint: string;
  /** The OAuth host's REST root. */
  readonly serverEndpoint: string;
}

/** Where a value belongs; all of it is bound into the ciphertext. */
export interface SealContext {
  /** The record's portal. */
  readonly memberId: string;
  /** The record's chain. */
  readonly chain: string;
  /** The field the value is stored in. */
  readonly field: TokenField;
  /**
   * Where the record sends its tokens: sealed as `v2` with it, opened only with the same values.
   * Without it a value is sealed as `v1` (the install spool's entries, which hold no destination).
   */
  readonly binding?: SealBinding | undefined;
}

/** What a stored value is, without opening it. */
export type StoredValueKind =
  | { readonly kind: 'empty' }
  | { readonly kind: 'plaintext' }
  | { readonly kind: 'sealed'; readonly keyId: string | undefined; readonly bound: boolean };

const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const BASE64 = /^[A-Za-z0-9+/]{43}=$/;
const BASE64URL = /^[A-Za-z0-9_-]{43}$/;
const B64URL_PART = /^[A-Za-z0-9_-]+$/;
// Any `v<digits>.` prefix is an envelope (a future version included): Bitrix24 tokens are hex.
const ENVELOPE = /^v[0-9]+\./;
const UNBOUND = 'v1';
const BOUND = 'v2';
const IV_BYTES = 12;
const TAG_BYTES = 16;

function toKeyObject(keyId: string, key: unknown, argument: string): KeyObject {
  let bytes: Buffer;
  if (typeof key === 'string') {
    if (!BASE64.test(key) && !BASE64URL.test(key)) {
      throw new TypeError(`${argument}.keys.${keyId} must be 32 bytes, or a base64 or base64url string of 32 bytes`);
    }
    bytes = Buffer.from(key, BASE64.test(key) ? 'base64' : 'base64url');
  } else if (key instanceof Uint8Array) {
    bytes = Buffer.from(key); // a copy: a later change to the caller's buffer changes nothing here
  } else {
    throw new TypeError(`${argument}.keys.${keyId} must be a Uint8Array or a base64 string`);
  }
  if (bytes.length !== 32) throw new TypeError(`${argument}.keys.${keyId} must be exactly 32 bytes (AES-256)`);
  const object = createSecretKey(bytes);
  bytes.fill(0);
  return object;
}

function associatedData(version: string, keyId: string, context: SealContext): Buffer {
  // JSON of an array: unambiguous for any strings, so no two contexts share associated data.
  const parts: string[] = [version, keyId, context.memberId, context.chain, context.field];
  if (version === BOUND) {
    const b = context.binding as SealBinding;
    parts.push(b.domain, b.clientEndpoint, b.serverEndpoint);
  }
  return Buffer.from(JSON.stringify(parts), 'utf8');
}

/**
 * Seals and opens token values with AES-256-GCM under a set of keys (internal: the stores and the
 * spool hold one each). Key material lives only in `KeyObject`s held in private fields, so neither
 * `util.inspect` nor `JSON.stringify` of an owner shows it.
 */
export class TokenCipher {
  /** The id of the key that seals. */
  readonly writeKeyId: string;
  readonly #keys = new Map<string, KeyObject>();

  /** Validates `options` (a `TypeError` naming the key id, never the key, on a mistake). */
  constructor(options: TokenEncryptionOptions, argument = 'options') {
    if (options === null || typeof options !== 'object') throw new TypeError(`${argument} must be an object`);
    const { keys, writeKeyId } = options;
    if (keys === null || typeof keys !== 'object') throw new TypeError(`${argument}.keys must be an object of keys by id`);
    for (const keyId of Object.keys(keys)) {
      if (!KEY_ID.test(keyId)) throw new TypeError(`${argument}.keys: a key id must be 1 to 32 characters of A-Z a-z 0-9 _ -`);
      this.#keys.set(keyId, toKeyObject(keyId, keys[keyId], argument));
    }
    if (typeof writeKeyId !== 'string' || !this.#keys.has(writeKeyId)) {
      throw new TypeError(`${argument}.writeKeyId must name one of ${argument}.keys`);
    }
    this.writeKeyId = writeKeyId;
  }

  /** Whether a key with this id is configured. */
  hasKey(keyId: string): boolean {
    return this.#keys.has(keyId);
  }

  /** Seals `value` with the write key and a fresh random IV. The empty string stays empty. */
  seal(value: string, context: SealContext): string {
    if (value === '') return '';
    const keyId = this.writeKeyId;
    const key = this.#keys.get(keyId) as KeyObject;
    const version = context.binding === undefined ? UNBOUND : BOUND;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(version, keyId, context));
    const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${version}.${keyId}.${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  /**
   * Opens a sealed value. Throws a {@link DecryptionError} (never returns garbage) for an unknown
   * key id, a wrong key, or an altered, truncated or moved value. Call only for a `sealed` value.
   */
  open(stored: string, context: SealContext): string {
    const fail = (reason: DecryptionFailureReason, keyId: string | undefined, cause?: unknown): never => {
      throw new DecryptionError({ ...context, keyId, reason }, cause === undefined ? {} : { cause });
    };
    const parts = stored.split('.');
    const keyId = parts[1] !== undefined && KEY_ID.test(parts[1]) ? parts[1] : undefined;
    const version = parts[0];
    if (parts.length !== 4 || (version !== UNBOUND && version !== BOUND) || keyId === undefined) return fail('malformed', keyId);
    // A bound value opens only against the destination it was sealed with.
    if (version === BOUND && context.binding === undefined) return fail('authentication', keyId);
    const [, , ivText = '', bodyText = ''] = parts;
    if (!B64URL_PART.test(ivText) || !B64URL_PART.test(bodyText)) return fail('malformed', keyId);
    const iv = Buffer.from(ivText, 'base64url');
    const body = Buffer.from(bodyText, 'base64url');
    if (iv.length !== IV_BYTES || body.length < TAG_BYTES) return fail('malformed', keyId);
    const key = this.#keys.get(keyId);
    if (key === undefined) return fail('unknown-key', keyId);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(associatedData(version, keyId, context));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
      return plain.toString('utf8');
    } catch {
      // node:crypto's message says nothing secret, but it is not kept: only the reason matters.
      return fail('authentication', keyId);
    }
  }
}

/** What a stored value is: empty, plaintext (written before encryption), or sealed (with its key id). */
export function storedValueKind(stored: string): StoredValueKind {
  if (stored === '') return { kind: 'empty' };
  if (!ENVELOPE.test(stored)) return { kind: 'plaintext' };
  const [version, keyId] = stored.split('.');
  return { kind: 'sealed', keyId: keyId !== undefined && KEY_ID.test(keyId) ? keyId : undefined, bound: version === BOUND };
}
