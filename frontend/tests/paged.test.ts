import { describe, expect, it } from 'vitest';
import { mergeRuns } from '../src/lib/feed';
import { PagedList, type Page, type PageFetch } from '../src/lib/paged.svelte';
import type { RunOut } from '../src/lib/types';
import { runOut } from './fixtures';

function run(id: number): RunOut {
  return runOut({ id, posted_at: new Date(Date.UTC(2026, 0, 1, 0, id)).toISOString() });
}

/** A fetch whose pages the test hands out one by one (cursor "c1", "c2", ...). */
function pages(...all: RunOut[][]) {
  const asked: (string | null)[] = [];
  const fetch = (cursor: string | null): Promise<Page<RunOut>> => {
    asked.push(cursor);
    const index = cursor === null ? 0 : Number(cursor.slice(1));
    const next = index + 1 < all.length ? `c${index + 1}` : null;
    return Promise.resolve({ items: all[index], next_cursor: next });
  };
  return { fetch, asked };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('PagedList', () => {
  it('loads the first page, then more pages in order, newest first without duplicates', async () => {
    const list = new PagedList<RunOut>(mergeRuns);
    const { fetch, asked } = pages([run(5), run(4)], [run(4), run(3)], [run(1)]);
    list.first(fetch);
    expect(list.loading).toBe(true);
    await settle();
    expect([list.loaded, list.loading, list.cursor]).toEqual([true, false, 'c1']);
    await list.more();
    await list.more();
    expect(list.items.map((r) => r.id)).toEqual([5, 4, 3, 1]);
    expect(list.cursor).toBeNull();
    await list.more(); // no cursor: nothing is asked
    expect(asked).toEqual([null, 'c1', 'c2']);
    list.add(run(6), run(5));
    expect(list.items.map((r) => r.id)).toEqual([6, 5, 4, 3, 1]);
  });

  it('drops a page that arrives after the query changed', async () => {
    const list = new PagedList<RunOut>(mergeRuns);
    let release: (page: Page<RunOut>) => void = () => {};
    const old: PageFetch<RunOut> = (cursor) =>
      cursor === null
        ? Promise.resolve({ items: [run(9)], next_cursor: 'c1' })
        : new Promise<Page<RunOut>>((resolve) => (release = resolve));
    list.first(old);
    await settle();
    const more = list.more(); // waits for `release`
    list.first(pages([run(2)]).fetch); // the query changes meanwhile
    await settle();
    release({ items: [run(8)], next_cursor: 'c2' });
    await more;
    expect(list.items.map((r) => r.id)).toEqual([2]);
    expect([list.cursor, list.loading]).toEqual([null, false]);
  });

  it('shows an error and keeps what it had; an aborted first page reports nothing', async () => {
    const list = new PagedList<RunOut>(mergeRuns);
    list.first(pages([run(3)], [run(2)]).fetch);
    await settle();
    const failing = new PagedList<RunOut>(mergeRuns);
    failing.first(() => Promise.reject(new Error('boom')));
    await settle();
    expect([failing.error, failing.loaded, failing.loading]).toEqual(['boom', false, false]);
    const cancel = list.first(() => Promise.reject(new DOMException('gone', 'AbortError')));
    cancel();
    await settle();
    expect(list.error).toBeNull();
    expect(list.items.map((r) => r.id)).toEqual([3]);
  });
});
