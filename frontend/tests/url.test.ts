import { describe, expect, it } from 'vitest';
import { apiUrl, isSafeUrl, safeHref, takeToken, withToken, wsUrl } from '../src/lib/url';

describe('safeHref', () => {
  it('accepts absolute http and https URLs', () => {
    expect(safeHref('https://logs.example.org/12/34/5/check/job/abc/')).toBe('https://logs.example.org/12/34/5/check/job/abc/');
    expect(safeHref('http://ci.example.com:8080/job/1')).toBe('http://ci.example.com:8080/job/1');
    expect(safeHref('  HTTPS://Example.org/x  ')).toBe('https://example.org/x');
  });

  it.each([
    'javascript:alert(1)',
    'JavaScript:alert(document.cookie)',
    ' javascript:alert(1)',
    'java\tscript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'data:image/svg+xml;base64,PHN2Zz4=',
    'vbscript:msgbox(1)',
    'file:///etc/passwd',
    'ftp://example.org/x',
    '//evil.example.org/x',
    '/relative/path',
    'logs.example.org/x',
    'http://',
    'https:// spaces in host',
    'http:\\\\evil.example.org',
    'https://exa\nmple.org',
    '',
  ])('rejects %j', (url) => {
    expect(safeHref(url)).toBeNull();
    expect(isSafeUrl(url)).toBe(false);
  });

  it('rejects non-strings', () => {
    expect(safeHref(null)).toBeNull();
    expect(safeHref(undefined)).toBeNull();
  });
});

describe('same-origin URLs', () => {
  it('derives ws: and wss: from the page protocol, ignoring the hash', () => {
    expect(wsUrl('http://dash.local:8080/#/grid?project=nova')).toBe('ws://dash.local:8080/api/v1/ws');
    expect(wsUrl('https://dash.example.org/#/')).toBe('wss://dash.example.org/api/v1/ws');
    expect(wsUrl('https://example.org/cidash/index.html#/alerts')).toBe('wss://example.org/cidash/api/v1/ws');
  });

  it('resolves API paths relative to where the app is served', () => {
    expect(apiUrl('http://h/cidash/#/x', 'api/v1/badge/a.svg')).toBe('http://h/cidash/api/v1/badge/a.svg');
    expect(apiUrl('http://h/#/x', '/api/v1/projects')).toBe('http://h/api/v1/projects');
  });
});

describe('read token in URLs', () => {
  it('adds the token to the websocket URL only when there is one', () => {
    expect(withToken('ws://dash:8080/api/v1/ws', null)).toBe('ws://dash:8080/api/v1/ws');
    expect(withToken('ws://dash:8080/api/v1/ws', 'a b&c')).toBe('ws://dash:8080/api/v1/ws?token=a+b%26c');
  });

  it('takes the token out of a shared link, keeping the route', () => {
    expect(takeToken('https://dash/?token=abc#/grid?project=nova')).toEqual({
      token: 'abc',
      href: 'https://dash/#/grid?project=nova',
    });
    expect(takeToken('https://dash/#/grid')).toEqual({ token: null, href: 'https://dash/#/grid' });
    expect(takeToken('https://dash/?token=%20#/').token).toBeNull();
  });
});
