// @vitest-environment jsdom
import { afterEach, describe, expect, it } from 'vitest';
import { memoryStorage as memory } from './fixtures';
import type { StorageLike } from '../src/lib/prefs';
import { loadWriteToken, operatorWrite, saveWriteToken } from '../src/lib/writeToken';

describe('writeToken', () => {
  afterEach(() => {
    sessionStorage.clear();
    localStorage.clear();
  });

  it('keeps the token until an empty one forgets it', () => {
    const s = memory();
    expect(loadWriteToken(s)).toBe('');
    saveWriteToken('  s3cret ', s);
    expect(s.data.get('cidash.writeToken')).toBe('s3cret');
    expect(loadWriteToken(s)).toBe('s3cret');
    saveWriteToken('', s);
    expect(s.data.has('cidash.writeToken')).toBe(false);
    saveWriteToken('again', s);
    saveWriteToken(null, s);
    expect(loadWriteToken(s)).toBe('');
  });

  it('lives in the tab (sessionStorage), never in localStorage', () => {
    saveWriteToken('tab-only');
    expect(sessionStorage.getItem('cidash.writeToken')).toBe('tab-only');
    expect(localStorage.length).toBe(0);
    expect(loadWriteToken()).toBe('tab-only');
  });

  it('a storage that refuses does not break the page', () => {
    const refusing: StorageLike = {
      getItem: () => {
        throw new Error('SecurityError');
      },
      setItem: () => {
        throw new Error('QuotaExceededError');
      },
      removeItem: () => {
        throw new Error('SecurityError');
      },
    };
    expect(() => saveWriteToken('x', refusing)).not.toThrow();
    expect(() => saveWriteToken('', refusing)).not.toThrow();
    expect(loadWriteToken(refusing)).toBe('');
    expect(loadWriteToken(null)).toBe('');
  });

  it('an operator write needs the token and a name, keeps the token, and says what failed', async () => {
    let calls = 0;
    const write = async () => {
      calls += 1;
    };
    expect(await operatorWrite('', 'olga', write)).toMatch(/write token/);
    expect(await operatorWrite('t0ken', '', write)).toMatch(/your name/);
    expect(calls).toBe(0);
    expect(await operatorWrite('t0ken', 'olga', write)).toBeNull();
    expect(calls).toBe(1);
    expect(sessionStorage.getItem('cidash.writeToken')).toBe('t0ken');
    const refused = await operatorWrite('t0ken', 'olga', async () => {
      throw new Error('403: wrong token');
    });
    expect(refused).toBe('403: wrong token');
  });
});
