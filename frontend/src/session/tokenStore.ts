// Where the refresh token is kept between page loads (see README, "Sessions").
export interface TokenStore {
  get(): string | null;
  set(token: string): void;
  clear(): void;
}

const KEY = "taskgraph.refreshToken";

/**
 * localStorage, because every tab of the origin must see the one live token of a
 * rotation family (a tab holding a spent one would revoke the family when it
 * next refreshes). The API hands the token to JavaScript, so no store a page can
 * reach is safer against script running in it; the CSP keeps foreign script out.
 */
export function browserTokenStore(storage: Storage = window.localStorage): TokenStore {
  return {
    get: () => storage.getItem(KEY),
    set: (token) => storage.setItem(KEY, token),
    clear: () => storage.removeItem(KEY),
  };
}

export function memoryTokenStore(initial: string | null = null): TokenStore {
  let token = initial;
  return {
    get: () => token,
    set: (value) => {
      token = value;
    },
    clear: () => {
      token = null;
    },
  };
}
