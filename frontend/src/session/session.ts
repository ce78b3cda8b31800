// The signed-in session: the access token in memory only, the refresh token in
// a TokenStore, refreshed before expiry and once after a refusal, one refresh at
// a time across tabs (the API revokes a whole token family when a spent refresh
// token is presented again).

import type { Locks } from "./locks";
import type { TokenStore } from "./tokenStore";

export interface SessionUser {
  id: string;
  email: string;
}

export interface Grant {
  accessToken: string;
  refreshToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
  user: SessionUser;
}

export type RefreshOutcome =
  | { kind: "granted"; grant: Grant }
  /** The token is spent, expired or revoked: the session is over. */
  | { kind: "rejected" }
  /** The API could not answer now (network, 503, rate limit): try again later. */
  | { kind: "failed"; error: Error };

export type SessionState =
  | { status: "restoring" }
  | { status: "signed-out"; reason?: string }
  | { status: "signed-in"; user: SessionUser };

/** What tabs tell each other. */
type Message =
  | { type: "granted"; grant: Grant; expiresAt: number }
  | { type: "signed-out"; reason?: string };

export interface Channel {
  postMessage(message: Message): void;
  addEventListener(type: "message", listener: (event: MessageEvent<Message>) => void): void;
  close(): void;
}

export interface SessionDeps {
  refresh: (refreshToken: string) => Promise<RefreshOutcome>;
  store: TokenStore;
  locks: Locks;
  channel?: Channel | undefined;
  now?: () => number;
  /** How long before expiry the access token is renewed. */
  renewBeforeMs?: number;
}

const LOCK = "taskgraph.refresh";
const DEFAULT_RENEW_BEFORE_MS = 60_000;
/** After a failed background refresh, when to try again. */
const RETRY_MS = 10_000;

interface Access {
  token: string;
  expiresAt: number;
  /** The refresh token this access token came with: its generation. */
  issuedWith: string;
}

export class Session {
  private state: SessionState;
  private access: Access | null = null;
  private inFlight: Promise<string | null> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly listeners = new Set<() => void>();
  private readonly now: () => number;
  private readonly renewBeforeMs: number;

  constructor(private readonly deps: SessionDeps) {
    this.now = deps.now ?? Date.now;
    this.renewBeforeMs = deps.renewBeforeMs ?? DEFAULT_RENEW_BEFORE_MS;
    this.state = deps.store.get() ? { status: "restoring" } : { status: "signed-out" };
    deps.channel?.addEventListener("message", (event) => this.onMessage(event.data));
  }

  /** Resumes a stored session (a new access token for the stored refresh token). */
  async restore(): Promise<void> {
    if (this.state.status !== "restoring") return;
    try {
      await this.refresh();
    } catch {
      // The API is unreachable: keep the token and try again later rather than sign out.
      this.setState({ status: "signed-out", reason: "The server could not be reached. Try again shortly." });
      this.schedule(RETRY_MS);
    }
  }

  getState(): SessionState {
    return this.state;
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** After login or register: the grant becomes this tab's and every other tab's session. */
  signIn(grant: Grant): void {
    this.adopt(grant, this.now() + grant.expiresIn * 1000);
    this.deps.store.set(grant.refreshToken);
    this.deps.channel?.postMessage({ type: "granted", grant, expiresAt: this.access!.expiresAt });
  }

  /** Ends the session here and in every tab (the caller tells the API first, if it should). */
  signOut(reason?: string): void {
    this.deps.store.clear();
    this.endLocally(reason);
    this.deps.channel?.postMessage({ type: "signed-out", reason });
  }

  /** The stored refresh token, for `logout`. */
  refreshToken(): string | null {
    return this.deps.store.get();
  }

  /** A usable access token: the one held, or a fresh one when it is about to expire. */
  async accessToken(): Promise<string | null> {
    if (this.access && this.access.expiresAt - this.now() > this.renewBeforeMs / 2) return this.access.token;
    if (!this.deps.store.get()) return null;
    return this.refresh();
  }

  /**
   * The API refused `rejected` (expired or ended early): one refresh, shared by
   * every request refused with that token. Null when the session is over.
   */
  async renewAfterRefusal(rejected: string): Promise<string | null> {
    if (this.access && this.access.token !== rejected) return this.access.token;
    this.access = null;
    return this.refresh();
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.deps.channel?.close();
  }

  /** One refresh per tab at a time, and one per origin under the lock. */
  private refresh(): Promise<string | null> {
    const generation = this.access?.issuedWith ?? null;
    this.inFlight ??= this.deps.locks
      .run(LOCK, () => this.refreshHoldingLock(generation))
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }

  /** `generation`: the refresh token this tab's access token came with when it decided to refresh. */
  private async refreshHoldingLock(generation: string | null): Promise<string | null> {
    const stored = this.deps.store.get();
    if (!stored) {
      this.endLocally();
      return null;
    }
    // Another tab rotated the token while this one waited, and told us its access token.
    const held = this.access;
    if (held && stored !== generation && held.issuedWith === stored) return held.token;
    const outcome = await this.deps.refresh(stored);
    switch (outcome.kind) {
      case "granted":
        this.signIn(outcome.grant);
        return outcome.grant.accessToken;
      case "rejected":
        this.signOut("Your session has ended. Please sign in again.");
        return null;
      case "failed":
        throw outcome.error;
    }
  }

  private adopt(grant: Grant, expiresAt: number): void {
    this.access = { token: grant.accessToken, expiresAt, issuedWith: grant.refreshToken };
    this.setState({ status: "signed-in", user: grant.user });
    this.schedule(Math.max(0, expiresAt - this.now() - this.renewBeforeMs));
  }

  private endLocally(reason?: string): void {
    this.access = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.setState(reason ? { status: "signed-out", reason } : { status: "signed-out" });
  }

  private onMessage(message: Message): void {
    if (message.type === "granted") this.adopt(message.grant, message.expiresAt);
    else this.endLocally(message.reason);
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refresh().then(
        () => undefined,
        () => this.schedule(RETRY_MS),
      );
    }, delayMs);
  }

  private setState(state: SessionState): void {
    this.state = state;
    for (const listener of this.listeners) listener();
  }
}
