import { Client, cacheExchange, fetchExchange } from "@urql/core";
import type { Session } from "../session/session";
import { authFetch } from "./authFetch";
import { GRAPHQL_PATH } from "./refresh";

/** The app's GraphQL client: same-origin `/graphql`, the session's token on every request. */
export function createClient(session: Session): Client {
  return new Client({
    url: GRAPHQL_PATH,
    exchanges: [cacheExchange, fetchExchange],
    fetch: authFetch(session),
    // Lists are refetched after every write, so reads go to the network and show cached data meanwhile.
    requestPolicy: "cache-and-network",
    preferGetMethod: false,
    fetchOptions: { headers: { accept: "application/graphql-response+json, application/json" } },
  });
}
