// Record builders for the conformance suite: realistic fixed records and seeded random ones, so a
// failing random case can be reproduced from the seed printed in the test name.

import type { ChainId, PortalRecord, PortalRecordInput } from '../../store/token-store.js';

/** A realistic record; `memberId` is the key, `overrides` replace any other field. */
export function sampleRecord(memberId: string, overrides: Partial<PortalRecordInput> = {}): PortalRecordInput {
  const installedAt = 1_767_225_600_000;
  return {
    memberId,
    domain: 'acme.bitrix24.com',
    clientEndpoint: 'https://acme.bitrix24.com/rest/',
    serverEndpoint: 'https://oauth.bitrix.info/rest/',
    accessToken: 'a1b2c3d4e5f60718293a4b5c6d7e8f90000000000000000000000000000001',
    refreshToken: 'f0e1d2c3b4a5968778695a4b3c2d1e0f000000000000000000000000000002',
    expires: 1_767_229_200,
    scope: 'crm,user_brief',
    status: 'L',
    userId: 1,
    applicationToken: '51856fefc120afa4b628cc82d3935cce',
    state: 'active',
    revokedReason: null,
    installedAt,
    updatedAt: installedAt,
    chainUpdatedAt: installedAt,
    revokedAt: null,
    ...overrides,
  };
}

/** A realistic record of one user's chain of `memberId` (its `userId` set to match). */
export function chainRecord(memberId: string, userId: number, overrides: Partial<PortalRecordInput> = {}): PortalRecordInput {
  const chain: ChainId = `user:${userId}`;
  return sampleRecord(memberId, {
    chain,
    userId,
    accessToken: `user-${userId}-access-0000000000000000000000000000000000000000000000`,
    refreshToken: `user-${userId}-refresh-000000000000000000000000000000000000000000000`,
    ...overrides,
  });
}

/** The record `input` becomes once stored with `version` (a missing `chain` is the portal's). */
export function withVersion(input: PortalRecordInput, version: number): PortalRecord {
  return { ...input, chain: input.chain ?? 'portal', eventTs: input.eventTs ?? null, version };
}

/** A small deterministic PRNG (mulberry32): the same seed gives the same records on every machine. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

// Characters chosen to upset storage layers: quotes, backslashes, separators, Cyrillic, CJK, an
// astral-plane emoji (a UTF-16 surrogate pair), a NUL-free control character and JSON/SQL specials.
const ALPHABET = [
  ...'abcXYZ019-_.,:;/?&=%+ ',
  '"',
  "'",
  '\\',
  '\n',
  '\t',
  '\u0001',
  'п',
  'ё',
  'Ж',
  '中',
  '文',
  'é',
  '😀',
  '$',
  '{',
  '}',
  '<',
  '>',
];

/** A random record built from `random`; every nullable field is null about half the time. */
export function randomRecord(random: () => number, memberId: string): PortalRecordInput {
  const int = (max: number): number => Math.floor(random() * max);
  const text = (maxLength: number): string => {
    let out = '';
    const length = int(maxLength + 1);
    for (let i = 0; i < length; i++) out += ALPHABET[int(ALPHABET.length)] ?? 'a';
    return out;
  };
  const maybe = <T>(value: T): T | null => (random() < 0.5 ? null : value);
  const time = (): number => int(4_102_444_800_000);
  return {
    memberId,
    domain: text(40),
    clientEndpoint: text(60),
    serverEndpoint: text(60),
    accessToken: text(80),
    refreshToken: text(80),
    expires: int(4_102_444_800),
    scope: text(200),
    status: text(2),
    userId: maybe(int(Number.MAX_SAFE_INTEGER)),
    applicationToken: maybe(text(40)),
    state: random() < 0.5 ? 'active' : 'revoked',
    revokedReason: maybe(text(30)),
    installedAt: time(),
    updatedAt: time(),
    chainUpdatedAt: time(),
    revokedAt: maybe(time()),
  };
}
