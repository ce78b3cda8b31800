import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Client, fetchExchange } from "@urql/core";
import { Provider } from "urql";
import { describe, expect, it, vi } from "vitest";
import { SessionContext } from "../../app/SessionContext";
import { inTabLocks } from "../../session/locks";
import { Session } from "../../session/session";
import { memoryTokenStore } from "../../session/tokenStore";
import { AuthForm } from "./AuthPage";

function renderWith(answer: unknown) {
  const fetch = vi.fn(async (_input: RequestInfo | URL, _init?: RequestInit) =>
    new Response(JSON.stringify(answer), { headers: { "content-type": "application/json" } }),
  );
  const client = new Client({ url: "/graphql", exchanges: [fetchExchange], fetch });
  const session = new Session({ refresh: vi.fn(), store: memoryTokenStore(), locks: inTabLocks() });
  const signIn = vi.spyOn(session, "signIn");
  return { fetch, session, signIn, client };
}

async function submit(mode: "sign-in" | "register", answer: unknown) {
  const env = renderWith(answer);
  render(
    <SessionContext.Provider value={env.session}>
      <Provider value={env.client}>
        <AuthForm mode={mode} />
      </Provider>
    </SessionContext.Provider>,
  );
  const user = userEvent.setup();
  await user.type(screen.getByLabelText("Email"), " Ada@Example.com ");
  await user.type(screen.getByLabelText("Password"), "analytical1");
  await user.click(screen.getByRole("button", { name: mode === "sign-in" ? "Sign in" : "Create account" }));
  return env;
}

describe("AuthForm", () => {
  it("shows a server field error on its field", async () => {
    await submit("register", {
      data: null,
      errors: [{ message: "Password needs a digit", extensions: { code: "BAD_USER_INPUT", field: "password" } }],
    });
    const password = screen.getByLabelText("Password");
    expect(await screen.findByText("Password needs a digit")).toBeInTheDocument();
    expect(password).toHaveAttribute("aria-invalid", "true");
    expect(password).toHaveAccessibleDescription(expect.stringContaining("Password needs a digit"));
  });

  it("says when to try again after a rate-limit refusal", async () => {
    await submit("sign-in", {
      data: null,
      errors: [{ message: "Too many requests", extensions: { code: "RATE_LIMITED", retryAfter: 125 } }],
    });
    expect(await screen.findByRole("alert")).toHaveTextContent("Too many attempts. Try again in 3 minutes.");
  });

  it("signs in with what register returns", async () => {
    const payload = { accessToken: "a", refreshToken: "r", expiresIn: 900, user: { id: "u", email: "ada@example.com" } };
    const env = await submit("register", { data: { register: { __typename: "AuthPayload", ...payload } } });
    await vi.waitFor(() => expect(env.signIn).toHaveBeenCalled());
    const body = JSON.parse(env.fetch.mock.calls[0]![1]!.body as string);
    expect(body.variables).toEqual({ email: "Ada@Example.com", password: "analytical1" });
    expect(env.session.getState()).toEqual({ status: "signed-in", user: payload.user });
  });
});
