import { useCallback } from "react";
import { useClient } from "urql";
import { LogoutMutation } from "../api/documents";
import { useSession } from "./SessionContext";

/** Ends this session at the API (its refresh token revoked), then here and in every tab. */
export function useLogout(): () => Promise<void> {
  const client = useClient();
  const session = useSession();
  return useCallback(async () => {
    const refreshToken = session.refreshToken();
    // Signed out here whatever the API says: the token is forgotten either way.
    if (refreshToken) await client.mutation(LogoutMutation, { refreshToken }).toPromise();
    session.signOut("You are signed out.");
  }, [client, session]);
}
