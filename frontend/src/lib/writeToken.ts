// The operator's write token (acks, silences, maintenance windows, the rule tester): one owner, one
// storage. sessionStorage, not localStorage: the token authorises writes, so it stays with this
// browser tab and is gone when the tab closes, rather than lingering on a shared machine.

import { errorText } from './api';
import type { StorageLike } from './prefs';

const WRITE_TOKEN_KEY = 'cidash.writeToken';

function tabStorage(): StorageLike | null {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null; // disabled storage (privacy mode): the token lives in the page only
  }
}

/** The write token entered in this tab, or '' when none is. */
export function loadWriteToken(s: StorageLike | null = tabStorage()): string {
  try {
    return s?.getItem(WRITE_TOKEN_KEY)?.trim() ?? '';
  } catch {
    return '';
  }
}

/** Keep `token` for this tab; an empty one forgets it. */
export function saveWriteToken(token: string | null, s: StorageLike | null = tabStorage()): void {
  const value = token?.trim();
  try {
    if (value) s?.setItem(WRITE_TOKEN_KEY, value);
    else s?.removeItem(WRITE_TOKEN_KEY);
  } catch {
    /* storage full or disabled: the token lives in the page only */
  }
}

/** An operator's write (acks, silences, maintenance): it needs the token and a name; the token is
 *  kept for the tab when it is tried. The error to show, or null when the write went through. */
export async function operatorWrite(token: string, author: string, write: () => Promise<unknown>): Promise<string | null> {
  if (!token || !author) return 'the write token and your name are needed';
  saveWriteToken(token);
  try {
    await write();
    return null;
  } catch (e) {
    return errorText(e);
  }
}
