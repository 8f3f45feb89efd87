// The leak check: everything the library let out during a test file (its log calls, pool events,
// errors, HTTP answers and pool counters, as published on OBSERVE_CHANNEL) searched for every secret
// the stand-in Bitrix24 minted in this process (published on MINTED_SECRETS_CHANNEL). Values the
// stand-in did not mint (fixed strings a test logs on purpose to assert redaction) are not searched.

import { inspect } from 'node:util';
import type { Observation } from '../../src/observe.js';
import type { MintedSecret } from '../../src/testing/fake-bitrix24/minted.js';

/** One secret found where it must not be. */
export interface Leak {
  readonly secret: MintedSecret['kind'];
  /** What let it out: `log warn`, `event refreshed`, `error OAuthRejectedError`, `response 403`, `stats`. */
  readonly source: string;
  /** How it was rendered when found: `message`, `String`, `JSON`, `inspect`, `cause[1] inspect`, ... */
  readonly rendering: string;
  /** The text around it, the secret itself replaced by `<SECRET>`. */
  readonly excerpt: string;
}

/** Secrets shorter than this are not searched: they would match ordinary words. */
const MIN_SECRET_LENGTH = 16;

function safe(render: () => string | undefined): string {
  try {
    return render() ?? '';
  } catch (error) {
    return `<render failed: ${error instanceof Error ? error.name : typeof error}>`;
  }
}

const deep = (value: unknown): string => inspect(value, { depth: 10, showHidden: true, maxArrayLength: 1000, maxStringLength: null, breakLength: Infinity });

function renderValue(value: unknown): [string, string][] {
  return [
    ['JSON', safe(() => JSON.stringify(value))],
    ['inspect', safe(() => deep(value))],
    ['String', typeof value === 'string' ? value : ''],
  ];
}

function renderError(error: unknown): [string, string][] {
  const out: [string, string][] = [];
  const seen = new Set<unknown>();
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && !seen.has(current) && depth < 20; depth++) {
    seen.add(current);
    const at = depth === 0 ? '' : `cause[${depth}] `;
    if (current instanceof Error) {
      out.push([`${at}message`, safe(() => (current as Error).message)]);
      out.push([`${at}stack`, safe(() => (current as Error).stack)]);
    }
    out.push([`${at}String`, safe(() => String(current))]);
    out.push([`${at}JSON`, safe(() => JSON.stringify(current))]);
    out.push([`${at}inspect`, safe(() => deep(current))]);
    if (current instanceof AggregateError) for (const inner of current.errors) out.push(...renderError(inner).map(([w, t]): [string, string] => [`${at}errors[] ${w}`, t]));
    current = current instanceof Error ? current.cause : undefined;
  }
  return out;
}

/** Every rendering of one observation, each as `[source, rendering, text]`. */
export function render(observation: Observation): [string, string, string][] {
  const tag = (source: string, parts: [string, string][]): [string, string, string][] => parts.map(([how, text]) => [source, how, text]);
  switch (observation.kind) {
    case 'log':
      return [
        ...tag(`log ${observation.level}`, [['message', observation.message ?? '']]),
        ...tag(`log ${observation.level} context`, renderValue(observation.context)),
      ];
    case 'event':
      return tag(`event ${observation.event}`, renderValue(observation.payload));
    case 'error':
      return tag(`error ${observation.error.name}`, renderError(observation.error));
    case 'response':
      return [
        ...tag(`response ${observation.status} headers`, renderValue(observation.headers)),
        ...tag(`response ${observation.status} body`, renderValue(observation.body)),
      ];
    case 'pool':
      return tag('stats', renderValue(safe(() => JSON.stringify(observation.pool.stats()))));
  }
}

/** Searches texts for secrets; hex secrets through a set (fast), others with `includes`. */
export class SecretIndex {
  readonly #hex = new Map<string, MintedSecret['kind']>();
  readonly #hexLengths = new Set<number>();
  readonly #other = new Map<string, MintedSecret['kind']>();

  add(secret: MintedSecret): void {
    if (typeof secret.value !== 'string' || secret.value.length < MIN_SECRET_LENGTH) return;
    if (/^[0-9a-f]+$/i.test(secret.value)) {
      this.#hex.set(secret.value.toLowerCase(), secret.kind);
      this.#hexLengths.add(secret.value.length);
    } else {
      this.#other.set(secret.value, secret.kind);
    }
  }

  get size(): number {
    return this.#hex.size + this.#other.size;
  }

  /** The secrets found in `text`, each with its position. */
  find(text: string): { kind: MintedSecret['kind']; value: string; at: number }[] {
    const found: { kind: MintedSecret['kind']; value: string; at: number }[] = [];
    if (this.#hex.size > 0) {
      const min = Math.min(...this.#hexLengths);
      const runs = new RegExp(`[0-9a-fA-F]{${min},}`, 'g');
      for (const match of text.matchAll(runs)) {
        const run = match[0].toLowerCase();
        for (const length of this.#hexLengths) {
          for (let i = 0; i + length <= run.length; i++) {
            const kind = this.#hex.get(run.slice(i, i + length));
            if (kind !== undefined) found.push({ kind, value: run.slice(i, i + length), at: match.index + i });
          }
        }
      }
    }
    for (const [value, kind] of this.#other) {
      const at = text.indexOf(value);
      if (at >= 0) found.push({ kind, value, at });
    }
    return found;
  }
}

/** Every leak of an indexed secret in the observations. */
export function findLeaks(observations: readonly Observation[], secrets: SecretIndex): Leak[] {
  const leaks: Leak[] = [];
  if (secrets.size === 0) return leaks;
  for (const observation of observations) {
    for (const [source, rendering, text] of render(observation)) {
      for (const hit of secrets.find(text)) {
        const excerpt = text.slice(Math.max(0, hit.at - 80), hit.at + hit.value.length + 80).split(hit.value).join('<SECRET>');
        leaks.push({ secret: hit.kind, source, rendering, excerpt });
      }
    }
  }
  return leaks;
}

/** A readable report of leaks (secrets replaced), at most `limit` of them. */
export function describeLeaks(leaks: readonly Leak[], limit = 10): string {
  const lines = leaks.slice(0, limit).map((leak) => `- ${leak.secret} in ${leak.source} (${leak.rendering}): ${leak.excerpt}`);
  if (leaks.length > limit) lines.push(`- ... and ${leaks.length - limit} more`);
  return `${leaks.length} secret(s) minted by the stand-in escaped through the library:\n${lines.join('\n')}`;
}
