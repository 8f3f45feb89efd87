// A real-shaped REST event (ONCRMDEALADD, as the Bitrix24 documentation shows it: no `expires`, no
// `user_id`) and every input form a caller may hand parseRestEvent, nested `data` included.

import { encodePhpForm } from '../../src/testing/fake-bitrix24/php-form.js';

export const DEAL_ADD = {
  event: 'ONCRMDEALADD',
  event_handler_id: '683',
  data: { FIELDS: { ID: '6799', TITLE: 'Deal #6799', CONTACT_IDS: { '0': '12', '1': '14' } } },
  ts: '1741092489',
  auth: {
    access_token: 's6p6eclrvim6da22ft9ch94ekreb52lv',
    expires_in: '3600',
    scope: 'crm',
    domain: 'some-domain.bitrix24.com',
    server_endpoint: 'https://oauth.bitrix.info/rest/',
    status: 'L',
    client_endpoint: 'https://some-domain.bitrix24.com/rest/',
    member_id: 'a223c6b3710f85df22e9377d6c4f7553',
    refresh_token: '4s386p3q0tr8dy89xvmt96234v3dljg8',
    application_token: '51856fefc120afa4b628cc82d3935cce',
  },
} as const;

/** The token values of {@link DEAL_ADD}: none may appear in an error. */
export const DEAL_ADD_SECRETS = [DEAL_ADD.auth.access_token, DEAL_ADD.auth.refresh_token, DEAL_ADD.auth.application_token];

/** A PHP bracket form of any nested payload. */
export function phpForm(payload: Readonly<Record<string, unknown>>): string {
  return encodePhpForm(payload);
}

/** The flat-key object a non-extended urlencoded body parser gives. */
export function flatObject(payload: Readonly<Record<string, unknown>>): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(phpForm(payload)));
}

/** Every input form, built from one nested payload: [name, input, contentType]. */
export function restInputForms(payload: Readonly<Record<string, unknown>>): [string, unknown, string | undefined][] {
  const form = phpForm(payload);
  const json = JSON.stringify(payload);
  return [
    ['form text', form, undefined],
    ['form text with content type', form, 'application/x-www-form-urlencoded; charset=utf-8'],
    ['form bytes', Buffer.from(form), undefined],
    ['form Uint8Array', new TextEncoder().encode(form), 'application/x-www-form-urlencoded'],
    ['form ArrayBuffer', new TextEncoder().encode(form).buffer, undefined],
    ['URLSearchParams', new URLSearchParams(form), undefined],
    ['JSON text', json, undefined],
    ['JSON text with content type', `\n ${json}`, 'application/json'],
    ['JSON bytes', Buffer.from(json), 'application/json'],
    ['nested object', JSON.parse(json) as unknown, undefined],
    ['flat-key object', flatObject(payload), undefined],
    ['half flat, half nested object', { ...flatObject({ ...payload, data: {} }), data: JSON.parse(JSON.stringify(payload.data)) as unknown }, undefined],
  ];
}

/** A copy of {@link DEAL_ADD} with `auth` fields replaced (`undefined` removes one). */
export function dealAddWithAuth(auth: Record<string, string | undefined>): Record<string, unknown> {
  const merged: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...DEAL_ADD.auth, ...auth })) if (value !== undefined) merged[key] = value;
  return { ...DEAL_ADD, auth: merged };
}
