// fetch with the session's bearer token, renewed once when the API refuses it.
import type { Session } from "../session/session";

type Fetch = typeof fetch;

export function authFetch(session: Session, base: Fetch = (...args) => fetch(...args)): Fetch {
  return async (input, init) => {
    const token = await session.accessToken();
    const response = await base(input, withBearer(init, token));
    if (!token || !(await isRefusedToken(response))) return response;
    const renewed = await session.renewAfterRefusal(token);
    if (!renewed) return response;
    return base(input, withBearer(init, renewed));
  };
}

export function withBearer(init: RequestInit | undefined, token: string | null): RequestInit {
  const headers = new Headers(init?.headers);
  if (token) headers.set("authorization", `Bearer ${token}`);
  return { ...init, headers };
}

/** HTTP 401 from the router's edge, or UNAUTHENTICATED from a subgraph with a token sent. */
export async function isRefusedToken(response: Response): Promise<boolean> {
  if (response.status === 401) return true;
  if (!response.headers.get("content-type")?.includes("json")) return false;
  try {
    const body: unknown = await response.clone().json();
    return hasUnauthenticated(body);
  } catch {
    return false;
  }
}

export function hasUnauthenticated(body: unknown): boolean {
  const errors = (body as { errors?: { extensions?: { code?: unknown } }[] } | null)?.errors;
  return Array.isArray(errors) && errors.some((e) => e?.extensions?.code === "UNAUTHENTICATED");
}
