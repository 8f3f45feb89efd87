// Where a renamed portal's call is re-sent: a pure function, every branch.
import { describe, expect, it } from 'vitest';
import { portalMove } from '../../src/sdk/move.js';

const ROOT = 'https://old.example.com/rest/';

describe('portalMove', () => {
  it('keeps the method and derives the new REST root and domain', () => {
    expect(portalMove(ROOT, 'https://old.example.com/rest/profile', 'https://new.example.com/rest/profile')).toEqual({
      url: 'https://new.example.com/rest/profile',
      root: 'https://new.example.com/rest/',
      host: 'new.example.com',
    });
    expect(portalMove(ROOT, 'https://old.example.com/rest/api/profile', 'https://new.example.com:8443/x//rest/api/profile')).toEqual({
      url: 'https://new.example.com:8443/x//rest/api/profile',
      root: 'https://new.example.com:8443/x/rest/',
      host: 'new.example.com:8443',
    });
  });

  it('resolves a relative location against the request', () => {
    expect(portalMove(ROOT, 'https://old.example.com/rest/profile', '/v2/rest/profile')?.root).toBe('https://old.example.com/v2/rest/');
  });

  it('refuses a downgrade, a non-http target, another method, or an unparsable answer', () => {
    expect(portalMove(ROOT, 'https://old.example.com/rest/profile', 'http://new.example.com/rest/profile')).toBeUndefined();
    expect(portalMove(ROOT, 'https://old.example.com/rest/profile', 'ftp://new.example.com/rest/profile')).toBeUndefined();
    expect(portalMove(ROOT, 'https://old.example.com/rest/profile', 'https://new.example.com/rest/user.get')).toBeUndefined();
    expect(portalMove(ROOT, 'https://old.example.com/rest/', 'https://new.example.com/rest/')).toBeUndefined();
    expect(portalMove(ROOT, undefined, 'https://new.example.com/rest/profile')).toBeUndefined();
    expect(portalMove(ROOT, 'not a url', 'https://new.example.com/rest/profile')).toBeUndefined();
    expect(portalMove('not a root', 'https://old.example.com/rest/profile', 'https://new.example.com/rest/profile')).toBeUndefined();
  });

  it('allows an http portal to move to https', () => {
    expect(portalMove('http://old.example.com/rest/', 'http://old.example.com/rest/profile', 'https://new.example.com/rest/profile')?.root).toBe(
      'https://new.example.com/rest/',
    );
  });
});
