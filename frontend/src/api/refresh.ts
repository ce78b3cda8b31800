// The refreshToken mutation, sent without the session (it is what renews it).
import { print } from "graphql";
import type { RefreshOutcome } from "../session/session";
import { RefreshMutation } from "./documents";
import type { RefreshMutation as RefreshResult } from "../gql/graphql";

export const GRAPHQL_PATH = "/graphql";

export async function refreshWithApi(token: string, base: typeof fetch = (...a) => fetch(...a)): Promise<RefreshOutcome> {
  let response: Response;
  try {
    response = await base(GRAPHQL_PATH, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/graphql-response+json, application/json" },
      body: JSON.stringify({ query: print(RefreshMutation), variables: { token } }),
    });
  } catch (error) {
    return { kind: "failed", error: error instanceof Error ? error : new Error(String(error)) };
  }
  let body: { data?: RefreshResult | null; errors?: { extensions?: { code?: string } }[] };
  try {
    body = await response.json();
  } catch {
    return { kind: "failed", error: new Error(`refresh answered HTTP ${response.status}`) };
  }
  const payload = body.data?.refreshToken;
  if (payload) return { kind: "granted", grant: payload };
  const codes = (body.errors ?? []).map((e) => e.extensions?.code);
  // A spent, expired or revoked token (or a malformed one) ends the session; anything else may pass.
  if (codes.includes("UNAUTHENTICATED") || codes.includes("BAD_USER_INPUT")) return { kind: "rejected" };
  return { kind: "failed", error: new Error(`refresh failed: ${codes.join(", ") || response.status}`) };
}
