// Three pages on real paths (the server falls back to index.html for them).
import { useCallback, useSyncExternalStore } from "react";

export const PAGES = [
  { path: "/tasks", label: "Tasks" },
  { path: "/files", label: "Files" },
  { path: "/account", label: "Account" },
] as const;

export type PagePath = (typeof PAGES)[number]["path"];

function currentPath(): PagePath {
  const path = window.location.pathname;
  return PAGES.find((page) => page.path === path)?.path ?? "/tasks";
}

function subscribe(listener: () => void) {
  window.addEventListener("popstate", listener);
  return () => window.removeEventListener("popstate", listener);
}

export function useRoute(): [PagePath, (path: PagePath) => void] {
  const path = useSyncExternalStore(subscribe, currentPath);
  const navigate = useCallback((next: PagePath) => {
    if (next !== window.location.pathname) window.history.pushState(null, "", next);
    window.dispatchEvent(new PopStateEvent("popstate"));
  }, []);
  return [path, navigate];
}
