import { useEffect, useRef } from "react";
import { AccountPage } from "../features/account/AccountPage";
import { AuthPage } from "../features/auth/AuthPage";
import { FilesPage } from "../features/files/FilesPage";
import { TasksPage } from "../features/tasks/TasksPage";
import { useSessionState } from "./SessionContext";
import { useLogout } from "./useLogout";
import { PAGES, useRoute, type PagePath } from "./routes";

export function App() {
  const state = useSessionState();
  if (state.status === "restoring") {
    return (
      <main className="auth-page" id="main" aria-busy="true">
        <p className="loading">Signing you in…</p>
      </main>
    );
  }
  if (state.status === "signed-out") return <AuthPage notice={state.reason} />;
  return <Shell email={state.user.email} />;
}

function Shell({ email }: { email: string }) {
  const [path, navigate] = useRoute();
  const logout = useLogout();
  const main = useRef<HTMLElement>(null);
  // A page change moves focus to the new page, as a full page load would.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.focus();
  }, [path]);

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">taskgraph</span>
        <nav aria-label="Main">
          <ul>
            {PAGES.map((page) => (
              <li key={page.path}>
                <a
                  href={page.path}
                  aria-current={page.path === path ? "page" : undefined}
                  onClick={(event) => {
                    event.preventDefault();
                    navigate(page.path as PagePath);
                  }}
                >
                  {page.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span className="who" title={email}>
          {email}
        </span>
        <button type="button" className="link-button" onClick={() => void logout()}>
          Sign out
        </button>
      </header>
      <main id="main" ref={main} className="page" tabIndex={-1}>
        {path === "/tasks" && <TasksPage />}
        {path === "/files" && <FilesPage />}
        {path === "/account" && <AccountPage email={email} />}
      </main>
    </>
  );
}
