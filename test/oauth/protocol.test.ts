// The Bitrix24 facts in src/protocol: OAuth error kinds, REST error shapes, OAuth hosts and endpoints.

import { describe, expect, it } from 'vitest';
import { OAuthRejectedError } from '../../src/errors.js';
import {
  classifyOAuthError,
  isTerminalOAuthError,
  isTransientOAuthStatus,
  sanitizeOAuthError,
} from '../../src/protocol/oauth-errors.js';
import {
  appInfoEndpointOf,
  normalizeTrustedHosts,
  serverEndpointOf,
  tokenEndpointOf,
  trustedBaseForServerDomain,
  trustedBaseForServerEndpoint,
} from '../../src/protocol/oauth-hosts.js';
import { isRestTokenError, restErrorCode } from '../../src/protocol/rest-errors.js';

describe('OAuth error kinds', () => {
  it.each([
    ['invalid_grant', 'chain'],
    ['NOT_INSTALLED', 'chain'],
    ['PAYMENT_REQUIRED', 'payment'],
    ['invalid_client', 'credentials'],
    ['wrong_client', 'credentials'],
    ['invalid_request', 'request'],
    ['invalid_scope', 'request'],
    ['INVALID_GRANT', 'request'],
  ] as const)('%s is about the %s', (error, kind) => {
    expect(classifyOAuthError(error)).toBe(kind);
  });

  it('counts only errors about the chain as terminal, and OAuthRejectedError agrees', () => {
    for (const error of ['invalid_grant', 'NOT_INSTALLED']) {
      expect(isTerminalOAuthError(error)).toBe(true);
      expect(new OAuthRejectedError(error, 400).terminal).toBe(true);
    }
    // Credentials are about the app, payment may clear: neither kills a chain.
    for (const error of ['PAYMENT_REQUIRED', 'invalid_client', 'wrong_client', 'invalid_request']) {
      expect(isTerminalOAuthError(error)).toBe(false);
      expect(new OAuthRejectedError(error, 400).terminal).toBe(false);
    }
  });

  it('treats 429 and 5xx as transient, other statuses not', () => {
    expect([429, 500, 502, 503].every(isTransientOAuthStatus)).toBe(true);
    expect([200, 302, 400, 401, 402, 404].some(isTransientOAuthStatus)).toBe(false);
  });

  it('keeps only error strings that look like codes', () => {
    expect(sanitizeOAuthError('invalid_grant')).toBe('invalid_grant');
    expect(sanitizeOAuthError('token abc is <bad>')).toBe('unknown_error');
    expect(sanitizeOAuthError(42)).toBe('unknown_error');
    expect(sanitizeOAuthError('x'.repeat(65))).toBe('unknown_error');
  });
});

describe('REST error shapes', () => {
  it('reads the code of a v2 and a v3 error body', () => {
    expect(restErrorCode({ error: 'expired_token', error_description: 'The access token provided has expired.' })).toBe('expired_token');
    expect(restErrorCode({ error: { code: 'invalid_token', message: 'x', validation: [] } })).toBe('invalid_token');
  });

  it('returns undefined for anything else', () => {
    for (const data of [undefined, null, 'expired_token', 42, {}, { error: null }, { error: { message: 'x' } }, { error: { code: 7 } }, { result: 1 }]) {
      expect(restErrorCode(data)).toBeUndefined();
    }
  });

  it('knows which codes say the access token is no longer usable', () => {
    expect(isRestTokenError('expired_token')).toBe(true);
    expect(isRestTokenError('invalid_token')).toBe(true);
    expect(isRestTokenError('ACCESS_DENIED')).toBe(false);
    expect(isRestTokenError(undefined)).toBe(false);
  });
});

describe('OAuth hosts', () => {
  const trusted = normalizeTrustedHosts(['https://oauth.bitrix.info/rest/', 'http://127.0.0.1:8080/prefix/'], 'hosts');

  it('normalises the allow-list and refuses bad entries', () => {
    expect(trusted).toEqual(['https://oauth.bitrix.info', 'http://127.0.0.1:8080/prefix']);
    expect(normalizeTrustedHosts(undefined, 'hosts')).toEqual(['https://oauth.bitrix.info', 'https://oauth.bitrix24.tech']);
    expect(() => normalizeTrustedHosts([], 'hosts')).toThrow(/hosts must be a non-empty array/);
    expect(() => normalizeTrustedHosts(['ftp://x'], 'hosts')).toThrow(/hosts\[0\]/);
    expect(() => normalizeTrustedHosts(['https://u:p@oauth.bitrix.info'], 'hosts')).toThrow(TypeError);
  });

  it('matches a server_endpoint on scheme, host, port and path prefix only', () => {
    expect(trustedBaseForServerEndpoint('https://oauth.bitrix.info/rest/', trusted)).toBe('https://oauth.bitrix.info');
    expect(trustedBaseForServerEndpoint('http://127.0.0.1:8080/prefix/rest/', trusted)).toBe('http://127.0.0.1:8080/prefix');
    for (const other of ['http://oauth.bitrix.info/rest/', 'https://oauth.bitrix.info.evil/rest/', 'https://oauth.bitrix.info:444/rest/', 'not a url']) {
      expect(trustedBaseForServerEndpoint(other, trusted)).toBeUndefined();
    }
  });

  it('matches a redirect server_domain on host and port', () => {
    expect(trustedBaseForServerDomain(' OAuth.Bitrix.Info ', trusted)).toBe('https://oauth.bitrix.info');
    expect(trustedBaseForServerDomain('127.0.0.1:8080', trusted)).toBe('http://127.0.0.1:8080/prefix');
    expect(trustedBaseForServerDomain('', trusted)).toBeUndefined();
    expect(trustedBaseForServerDomain('oauth.bitrix24.tech', trusted)).toBeUndefined();
  });

  it('builds the endpoints of a base', () => {
    expect(serverEndpointOf('https://oauth.bitrix.info')).toBe('https://oauth.bitrix.info/rest/');
    expect(tokenEndpointOf('https://oauth.bitrix.info')).toBe('https://oauth.bitrix.info/oauth/token/');
    expect(appInfoEndpointOf('https://oauth.bitrix.info')).toBe('https://oauth.bitrix.info/rest/app.info');
  });
});
