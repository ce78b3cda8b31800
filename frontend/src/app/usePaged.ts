// A cursor-paged list: the first page whenever `key` changes or `reload` is
// called, "load more" after it.
import { useCallback, useEffect, useRef, useState } from "react";
import type { CombinedError } from "@urql/core";
import { problems, type ApiProblem } from "../api/graphqlErrors";

export interface Page<T> {
  nodes: T[];
  totalCount: number;
  hasNextPage: boolean;
  endCursor: string | null;
}

export type FetchPage<T> = (after: string | null) => Promise<{ page: Page<T> | null; error?: CombinedError | undefined }>;

export interface Paged<T> {
  nodes: T[];
  totalCount: number;
  hasNextPage: boolean;
  loading: boolean;
  loadingMore: boolean;
  problem: ApiProblem | null;
  loadMore: () => void;
  reload: () => void;
  /** Replaces one node in place (after an edit). */
  replace: (match: (node: T) => boolean, node: T) => void;
}

interface Loaded<T> {
  /** Which request this answers: `key` and the reload count. */
  request: string;
  page: Page<T> | null;
  problem: ApiProblem | null;
}

export function usePaged<T>(key: string, fetchPage: FetchPage<T>): Paged<T> {
  const [version, setVersion] = useState(0);
  const [loaded, setLoaded] = useState<Loaded<T>>({ request: "", page: null, problem: null });
  const [loadingMore, setLoadingMore] = useState(false);
  const fetchRef = useRef(fetchPage);
  useEffect(() => {
    fetchRef.current = fetchPage;
  });
  const request = `${key}#${version}`;

  useEffect(() => {
    let current = true;
    void fetchRef.current(null).then(({ page, error }) => {
      if (current) setLoaded({ request, page, problem: page ? null : (problems(error)[0] ?? null) });
    });
    return () => {
      current = false;
    };
  }, [request]);

  const loadMore = useCallback(async () => {
    const page = loaded.page;
    if (!page?.hasNextPage || loadingMore) return;
    setLoadingMore(true);
    const { page: next, error } = await fetchRef.current(page.endCursor);
    setLoadingMore(false);
    setLoaded((s) => {
      if (s.request !== loaded.request) return s;
      if (!next || !s.page) return { ...s, problem: problems(error)[0] ?? null };
      return { ...s, problem: null, page: { ...next, nodes: [...s.page.nodes, ...next.nodes] } };
    });
  }, [loaded, loadingMore]);

  const replace = useCallback((match: (node: T) => boolean, node: T) => {
    setLoaded((s) => (s.page ? { ...s, page: { ...s.page, nodes: s.page.nodes.map((n) => (match(n) ? node : n)) } } : s));
  }, []);
  const reload = useCallback(() => setVersion((v) => v + 1), []);

  return {
    nodes: loaded.page?.nodes ?? [],
    totalCount: loaded.page?.totalCount ?? 0,
    hasNextPage: loaded.page?.hasNextPage ?? false,
    loading: loaded.request !== request,
    loadingMore,
    problem: loaded.problem,
    loadMore: () => void loadMore(),
    reload,
    replace,
  };
}
