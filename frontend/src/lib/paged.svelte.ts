import { errorText, load } from './api';

/** One page of a cursor-paginated list, as the API returns it. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** Fetches the page after `cursor` (null: the first page) of one query. */
export type PageFetch<T> = (cursor: string | null, signal?: AbortSignal) => Promise<Page<T>>;

/**
 * A cursor-paginated list as a page shows it: the first page of a query (loaded again whenever
 * the query changes), further pages on demand, live items merged in. One request at a time; a
 * page that arrives after the query changed is dropped rather than mixed into the new list.
 */
export class PagedList<T> {
  items = $state<T[]>([]);
  cursor = $state<string | null>(null);
  loaded = $state(false);
  loading = $state(false);
  error = $state<string | null>(null);
  readonly #merge: (list: readonly T[], incoming: readonly T[]) => T[];
  #fetch: PageFetch<T> | null = null;

  /** `merge` adds items to the list in display order without duplicates. */
  constructor(merge: (list: readonly T[], incoming: readonly T[]) => T[]) {
    this.#merge = merge;
  }

  /** Loads the first page of a (new) query; returns the cancel, for an `$effect` to return. */
  first(fetch: PageFetch<T>): () => void {
    this.#fetch = fetch;
    return load((signal) => fetch(null, signal), {
      busy: (loading) => (this.loading = loading),
      ok: (page) => {
        this.items = this.#merge([], page.items);
        this.cursor = page.next_cursor;
        this.error = null;
        this.loaded = true;
      },
      failed: (message) => (this.error = message),
    });
  }

  /** Loads the next page, if there is one and nothing else is loading. */
  async more(): Promise<void> {
    const fetch = this.#fetch;
    if (!fetch || !this.cursor || this.loading) return;
    this.loading = true;
    try {
      const page = await fetch(this.cursor);
      if (fetch !== this.#fetch) return; // the query changed meanwhile
      this.items = this.#merge(this.items, page.items);
      this.cursor = page.next_cursor;
      this.error = null;
    } catch (e) {
      if (fetch === this.#fetch) this.error = errorText(e);
    } finally {
      if (fetch === this.#fetch) this.loading = false;
    }
  }

  /** Merges items that arrived live. */
  add(...incoming: T[]): void {
    this.items = this.#merge(this.items, incoming);
  }
}
