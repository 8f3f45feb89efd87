// PHP-style bracket forms (`auth[access_token]=…`) for the stand-in Bitrix24: Bitrix24 sends its
// events in this shape and accepts REST parameters in it, so the stand-in must write and read it.

/** A decoded form: nested plain objects whose leaves are strings. */
export interface FormTree {
  [key: string]: string | FormTree;
}

/** Keys that would reach `Object.prototype` if a decoded form were ever merged into a plain object. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

/**
 * Encodes a nested object as `application/x-www-form-urlencoded` with PHP bracket keys, in the
 * object's key order. Scalar leaves are stringified, `null` becomes an empty value, other leaves are skipped.
 */
export function encodePhpForm(value: Readonly<Record<string, unknown>>): string {
  const pairs: string[] = [];
  const walk = (prefix: string, node: unknown): void => {
    if (node === undefined) return;
    if (node !== null && typeof node === 'object') {
      for (const [key, child] of Object.entries(node as Record<string, unknown>)) {
        walk(prefix === '' ? key : `${prefix}[${key}]`, child);
      }
      return;
    }
    let leaf: string;
    if (typeof node === 'string') leaf = node;
    else if (typeof node === 'number' || typeof node === 'boolean' || typeof node === 'bigint') leaf = String(node);
    else if (node === null) leaf = '';
    else return;
    pairs.push(`${encodeURIComponent(prefix)}=${encodeURIComponent(leaf)}`);
  };
  walk('', value);
  return pairs.join('&');
}

/**
 * Decodes a PHP bracket form (`a[b][c]=1`) into a tree without prototypes. Later duplicates win,
 * as in PHP; keys that could pollute prototypes are dropped; `a[]` appends a numeric index.
 */
export function decodePhpForm(params: URLSearchParams): FormTree {
  const root: FormTree = Object.create(null) as FormTree;
  for (const [rawKey, value] of params) {
    const path = splitKey(rawKey);
    if (path === null || path.some((part) => FORBIDDEN_KEYS.has(part))) continue;
    let node = root;
    for (let i = 0; i < path.length; i += 1) {
      let part = path[i] as string;
      const last = i === path.length - 1;
      if (part === '') part = String(Object.keys(node).length);
      if (last) {
        node[part] = value;
        break;
      }
      const next = node[part];
      if (next === undefined || typeof next === 'string') {
        const child: FormTree = Object.create(null) as FormTree;
        node[part] = child;
        node = child;
      } else {
        node = next;
      }
    }
  }
  return root;
}

/** `a[b][c]` → `['a', 'b', 'c']`; `null` for a malformed key (unbalanced brackets, empty head). */
function splitKey(key: string): string[] | null {
  const open = key.indexOf('[');
  if (open === -1) return key === '' ? null : [key];
  const head = key.slice(0, open);
  if (head === '') return null;
  const parts = [head];
  const rest = key.slice(open);
  const re = /\[([^[\]]*)\]/gy;
  let consumed = 0;
  let match: RegExpExecArray | null;
  while ((match = re.exec(rest)) !== null) {
    parts.push(match[1] ?? '');
    consumed = re.lastIndex;
  }
  return consumed === rest.length ? parts : null;
}
