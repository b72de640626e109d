import { describe, expect, it } from 'vitest';
import {
  loadNotify,
  loadTheme,
  loadToken,
  nextTheme,
  saveNotify,
  saveTheme,
  saveToken,
} from '../src/lib/prefs';
import { memoryStorage as memory } from './fixtures';

describe('prefs', () => {
  it('persists the theme, "auto" being the absence of a choice', () => {
    const s = memory();
    expect(loadTheme(s)).toBe('auto');
    saveTheme('dark', s);
    expect(s.data.get('cidash.theme')).toBe('dark');
    expect(loadTheme(s)).toBe('dark');
    saveTheme('auto', s);
    expect(s.data.has('cidash.theme')).toBe(false);
    s.data.set('cidash.theme', 'purple');
    expect(loadTheme(s)).toBe('auto');
    expect(loadTheme(null)).toBe('auto');
  });

  it('cycles auto → light → dark → auto', () => {
    expect([nextTheme('auto'), nextTheme('light'), nextTheme('dark')]).toEqual(['light', 'dark', 'auto']);
  });

  it('persists the notification choice', () => {
    const s = memory();
    expect(loadNotify(s)).toBe(false);
    saveNotify(true, s);
    expect(loadNotify(s)).toBe(true);
    saveNotify(false, s);
    expect(loadNotify(s)).toBe(false);
  });

  it('keeps the read token trimmed, and forgets an empty one', () => {
    const s = memory();
    expect(loadToken(s)).toBeNull();
    saveToken('  tok  ', s);
    expect(loadToken(s)).toBe('tok');
    saveToken('', s);
    expect(s.data.has('cidash.token')).toBe(false);
    expect(loadToken(null)).toBeNull();
  });
});
