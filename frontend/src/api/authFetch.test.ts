import { describe, expect, it, vi } from "vitest";
import { inTabLocks } from "../session/locks";
import { Session, type RefreshOutcome } from "../session/session";
import { memoryTokenStore } from "../session/tokenStore";
import { authFetch } from "./authFetch";

const user = { id: "u1", email: "ada@example.com" };

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

function signedInSession() {
  let n = 0;
  const refresh = vi.fn(async (): Promise<RefreshOutcome> => {
    n += 1;
    return { kind: "granted", grant: { accessToken: `access-${n}`, refreshToken: `refresh-${n}`, expiresIn: 900, user } };
  });
  const session = new Session({ refresh, store: memoryTokenStore(), locks: inTabLocks() });
  session.signIn({ accessToken: "access-0", refreshToken: "refresh-0", expiresIn: 900, user });
  return { session, refresh };
}

describe("authFetch", () => {
  it("sends the bearer token", async () => {
    const { session } = signedInSession();
    const base = vi.fn(async (_input: RequestInfo | URL, _init?: RequestInit) => json(200, { data: {} }));
    await authFetch(session, base)("/graphql", { method: "POST" });
    expect(new Headers(base.mock.calls[0]![1]!.headers).get("authorization")).toBe("Bearer access-0");
  });

  it("renews once after a 401 and retries with the new token", async () => {
    const { session, refresh } = signedInSession();
    const base = vi.fn(async (_input: RequestInfo | URL, init?: RequestInit) =>
      new Headers(init?.headers).get("authorization") === "Bearer access-0"
        ? json(401, { errors: [{ message: "expired", extensions: { code: "UNAUTHENTICATED" } }] })
        : json(200, { data: { ok: true } }),
    );
    const fetcher = authFetch(session, base);
    const responses = await Promise.all([fetcher("/graphql"), fetcher("/graphql"), fetcher("/graphql")]);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(refresh).toHaveBeenCalledTimes(1);
  });

  it("gives up after one retry", async () => {
    const { session, refresh } = signedInSession();
    const base = vi.fn(async () => json(401, { errors: [{ message: "no", extensions: { code: "UNAUTHENTICATED" } }] }));
    const response = await authFetch(session, base)("/graphql");
    expect(response.status).toBe(401);
    expect(base).toHaveBeenCalledTimes(2);
    expect(refresh).toHaveBeenCalledTimes(1);
  });

  it("leaves other errors alone", async () => {
    const { session, refresh } = signedInSession();
    const base = vi.fn(async () => json(200, { errors: [{ message: "bad", extensions: { code: "BAD_USER_INPUT" } }] }));
    await authFetch(session, base)("/graphql");
    expect(base).toHaveBeenCalledTimes(1);
    expect(refresh).not.toHaveBeenCalled();
  });
});
