import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { inTabLocks } from "./locks";
import { Session, type Channel, type Grant, type RefreshOutcome } from "./session";
import { memoryTokenStore, type TokenStore } from "./tokenStore";

const user = { id: "u1", email: "ada@example.com" };

function grant(n: number, expiresIn = 900): Grant {
  return { accessToken: `access-${n}`, refreshToken: `refresh-${n}`, expiresIn, user };
}

/** A token service like the API's: each token rotates once; a spent one revokes the family. */
function fakeApi(start = 0) {
  let current = `refresh-${start}`;
  let n = start;
  const calls: string[] = [];
  let revoked = false;
  const refresh = vi.fn(async (token: string): Promise<RefreshOutcome> => {
    calls.push(token);
    await Promise.resolve();
    if (revoked || token !== current) {
      revoked = true;
      return { kind: "rejected" };
    }
    n += 1;
    current = `refresh-${n}`;
    return { kind: "granted", grant: grant(n) };
  });
  return { refresh, calls, isRevoked: () => revoked };
}

/** Two tabs' channels: what one posts, the other receives (as BroadcastChannel does). */
function channelPair(): [Channel, Channel] {
  const listeners: [((e: MessageEvent) => void)[], ((e: MessageEvent) => void)[]] = [[], []];
  const make = (mine: 0 | 1): Channel => ({
    postMessage: (message) => {
      for (const l of listeners[1 - mine]!) l(new MessageEvent("message", { data: message }));
    },
    addEventListener: (_type, listener) => listeners[mine].push(listener as (e: MessageEvent) => void),
    close: () => undefined,
  });
  return [make(0), make(1)];
}

describe("Session", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("keeps the access token in memory and only the refresh token in the store", () => {
    const store = memoryTokenStore();
    const session = new Session({ refresh: fakeApi().refresh, store, locks: inTabLocks() });
    session.signIn(grant(0));
    expect(store.get()).toBe("refresh-0");
    expect(session.getState()).toEqual({ status: "signed-in", user });
  });

  it("refreshes a minute before the access token expires", async () => {
    const api = fakeApi();
    const session = new Session({ refresh: api.refresh, store: memoryTokenStore(), locks: inTabLocks() });
    session.signIn(grant(0, 900));
    await vi.advanceTimersByTimeAsync(838_000);
    expect(api.refresh).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(3_000);
    expect(api.calls).toEqual(["refresh-0"]);
    expect(await session.accessToken()).toBe("access-1");
  });

  it("sends one refresh for many requests that find the token expiring", async () => {
    const api = fakeApi();
    const store = memoryTokenStore("refresh-0");
    const session = new Session({ refresh: api.refresh, store, locks: inTabLocks() });
    const tokens = await Promise.all([session.accessToken(), session.accessToken(), session.accessToken()]);
    expect(tokens).toEqual(["access-1", "access-1", "access-1"]);
    expect(api.refresh).toHaveBeenCalledTimes(1);
  });

  it("renews once for every request refused with the same token", async () => {
    const api = fakeApi();
    const session = new Session({ refresh: api.refresh, store: memoryTokenStore(), locks: inTabLocks() });
    session.signIn(grant(0));
    const renewed = await Promise.all([session.renewAfterRefusal("access-0"), session.renewAfterRefusal("access-0")]);
    expect(renewed).toEqual(["access-1", "access-1"]);
    expect(api.calls).toEqual(["refresh-0"]);
    // A request refused with the old token after the renewal gets the new one without another refresh.
    expect(await session.renewAfterRefusal("access-0")).toBe("access-1");
    expect(api.refresh).toHaveBeenCalledTimes(1);
  });

  it("refreshes once across two tabs, and neither presents a spent token", async () => {
    const api = fakeApi();
    const store: TokenStore = memoryTokenStore("refresh-0");
    const locks = inTabLocks(); // one lock manager per origin, as navigator.locks is
    const [channelA, channelB] = channelPair();
    const tabA = new Session({ refresh: api.refresh, store, locks, channel: channelA });
    const tabB = new Session({ refresh: api.refresh, store, locks, channel: channelB });
    const [a, b] = await Promise.all([tabA.accessToken(), tabB.accessToken()]);
    expect(a).toBe("access-1");
    expect(b).toBe("access-1");
    expect(api.calls).toEqual(["refresh-0"]);
    expect(api.isRevoked()).toBe(false);
    expect(tabB.getState()).toEqual({ status: "signed-in", user });
  });

  it("tabs whose timers fire together rotate the token once", async () => {
    const api = fakeApi();
    const store = memoryTokenStore();
    const locks = inTabLocks();
    const [channelA, channelB] = channelPair();
    const tabA = new Session({ refresh: api.refresh, store, locks, channel: channelA });
    const tabB = new Session({ refresh: api.refresh, store, locks, channel: channelB });
    tabA.signIn(grant(0, 900)); // tab B adopts it from the channel
    expect(tabB.getState().status).toBe("signed-in");
    await vi.advanceTimersByTimeAsync(841_000);
    expect(api.calls).toEqual(["refresh-0"]);
    expect(await tabB.accessToken()).toBe("access-1");
    expect(api.isRevoked()).toBe(false);
  });

  it("signs every tab out when the refresh token is refused", async () => {
    const store = memoryTokenStore("spent");
    const [channelA, channelB] = channelPair();
    const refresh = vi.fn(async (): Promise<RefreshOutcome> => ({ kind: "rejected" }));
    const tabA = new Session({ refresh, store, locks: inTabLocks(), channel: channelA });
    const tabB = new Session({ refresh, store, locks: inTabLocks(), channel: channelB });
    tabB.signIn(grant(5)); // tab A adopts it
    // The API ended the session (say, logoutAll elsewhere): A's token is refused, and so is the refresh.
    expect(await tabA.renewAfterRefusal("access-5")).toBeNull();
    expect(store.get()).toBeNull();
    expect(tabA.getState().status).toBe("signed-out");
    expect(tabB.getState().status).toBe("signed-out");
  });

  it("keeps the stored token when the API cannot be reached, and tries again", async () => {
    const store = memoryTokenStore("refresh-0");
    const api = fakeApi();
    let down = true;
    const refresh = vi.fn(async (token: string): Promise<RefreshOutcome> =>
      down ? { kind: "failed", error: new Error("offline") } : api.refresh(token),
    );
    const session = new Session({ refresh, store, locks: inTabLocks() });
    await session.restore();
    expect(store.get()).toBe("refresh-0");
    down = false;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(session.getState()).toEqual({ status: "signed-in", user });
  });
});
