import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { Provider } from "urql";
import { createClient } from "./api/client";
import { refreshWithApi } from "./api/refresh";
import { App } from "./app/App";
import { SessionContext } from "./app/SessionContext";
import { ToastProvider } from "./components/Toasts";
import { browserLocks } from "./session/locks";
import { Session } from "./session/session";
import { browserTokenStore } from "./session/tokenStore";
import "./styles.css";

const session = new Session({
  refresh: (token) => refreshWithApi(token),
  store: browserTokenStore(),
  locks: browserLocks(),
  channel: typeof BroadcastChannel === "undefined" ? undefined : new BroadcastChannel("taskgraph.session"),
});
void session.restore();
const client = createClient(session);

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <SessionContext.Provider value={session}>
      <Provider value={client}>
        <ToastProvider>
          <App />
        </ToastProvider>
      </Provider>
    </SessionContext.Provider>
  </StrictMode>,
);
