//! Ended sessions and unreachable keys with the real auth and tasks subgraphs:
//! an earlier access token is refused within seconds at the router (401) and
//! at tasks called directly; a JWKS that cannot be fetched is a 503 to retry.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kit::testing::{TcpGate, wait_for};
use serde_json::{Value, json};

use crate::helpers::{RouterClient, Subgraph, repo_path, spawn_auth, spawn_auth_tasks_stack, spawn_router};

const PASSWORD: &str = "sessions end 1";
const NEW_PASSWORD: &str = "sessions end 2";
const ME: &str = "{ me { id } }";
const MY_TASKS: &str = "{ tasks(first: 1) { totalCount } }";

struct Stack {
    auth: Subgraph,
    tasks: Subgraph,
    router: RouterClient,
    http: reqwest::Client,
}

async fn stack() -> Stack {
    let (auth, tasks, router) = spawn_auth_tasks_stack(&[("RATE_LIMIT_ENABLED", "false".to_owned())]).await;
    Stack { auth, tasks, router, http: kit::testing::router_client() }
}

/// Tokens of one signed-in session.
struct Session {
    access: String,
    refresh: String,
}

impl Stack {
    async fn sign(&self, mutation: &str, email: &str, password: &str) -> Session {
        let query = format!(
            "mutation($e: String!, $p: String!) {{ s: {mutation}(email: $e, password: $p) {{ accessToken refreshToken }} }}"
        );
        let body = self.router.graphql(None, &query, json!({ "e": email, "p": password })).await;
        let tokens = &body["data"]["s"];
        let token = |name: &str| tokens[name].as_str().unwrap_or_else(|| panic!("{mutation}: {body}")).to_owned();
        Session { access: token("accessToken"), refresh: token("refreshToken") }
    }

    /// `(HTTP status, code of the first error)` of `{ me { id } }` through the router.
    async fn at_router(&self, token: &str) -> (u16, Option<String>) {
        let response = self.router.post(Some(token), json!({ "query": ME })).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("JSON");
        (status, body["errors"][0]["extensions"]["code"].as_str().map(str::to_owned))
    }

    /// The code of the first error of a query sent to tasks directly, if any.
    async fn at_tasks(&self, token: &str) -> Option<String> {
        let url = format!("{}/graphql", self.tasks.running.address);
        let response = self.http.post(url).bearer_auth(token).json(&json!({ "query": MY_TASKS })).send().await;
        let body: Value = response.expect("tasks answers").json().await.expect("JSON");
        body["errors"][0]["extensions"]["code"].as_str().map(str::to_owned)
    }

    async fn assert_works(&self, session: &Session, what: &str) {
        assert_eq!(self.at_router(&session.access).await, (200, None), "{what}: at the router");
        assert_eq!(self.at_tasks(&session.access).await, None, "{what}: at tasks");
    }

    /// Waits until `token` is refused at the router and at tasks: how long each took.
    async fn refused_after(&self, token: &str, since: Instant) -> (Duration, Duration) {
        let unauthenticated = Some("UNAUTHENTICATED".to_owned());
        let router = wait_for("the router to refuse the token", || async {
            (self.at_router(token).await == (401, unauthenticated.clone())).then(|| since.elapsed())
        });
        let tasks = wait_for("tasks to refuse the token", || async {
            (self.at_tasks(token).await == unauthenticated).then(|| since.elapsed())
        });
        tokio::join!(router, tasks)
    }

    async fn mutate(&self, token: &str, query: &str, variables: Value) {
        let body = self.router.graphql(Some(token), query, variables).await;
        assert!(body["errors"].is_null(), "{query}: {body}");
    }

    /// Plays a thief replaying `session`'s refresh token after its owner rotated it.
    async fn reuse_refresh_token(&self, session: &Session) {
        let refresh = "mutation($t: String!) { refreshToken(token: $t) { refreshToken } }";
        self.mutate(&session.access, refresh, json!({ "t": session.refresh })).await;
        let auth_db = sqlx::PgPool::connect(&self.auth.database_url()).await.expect("auth's database");
        // Past REFRESH_REUSE_GRACE, so the replay counts as reuse.
        sqlx::query("UPDATE auth.refresh_tokens SET replaced_at = now() - interval '1 minute'")
            .execute(&auth_db)
            .await
            .expect("age the rotation");
        auth_db.close().await;
        let replay = self.router.graphql(None, refresh, json!({ "t": session.refresh })).await;
        assert_eq!(replay["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{replay}");
    }
}

#[derive(Debug, Clone, Copy)]
enum Ending {
    LogoutAll,
    ChangePassword,
    DeleteAccount,
    RefreshReuse,
}

#[tokio::test]
async fn each_way_of_ending_sessions_refuses_earlier_tokens_at_the_router_and_at_tasks_within_seconds() {
    let stack = stack().await;
    for ending in [Ending::LogoutAll, Ending::ChangePassword, Ending::DeleteAccount, Ending::RefreshReuse] {
        let email = format!("{ending:?}@example.com").to_lowercase();
        let session = stack.sign("register", &email, PASSWORD).await;
        stack.assert_works(&session, "before").await;

        let ended_at = Instant::now();
        match ending {
            Ending::LogoutAll => stack.mutate(&session.access, "mutation { logoutAll }", json!({})).await,
            Ending::ChangePassword => {
                let change =
                    "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
                stack.mutate(&session.access, change, json!({ "c": PASSWORD, "n": NEW_PASSWORD })).await
            }
            Ending::DeleteAccount => {
                let delete = "mutation($p: String!) { deleteAccount(password: $p) }";
                stack.mutate(&session.access, delete, json!({ "p": PASSWORD })).await
            }
            Ending::RefreshReuse => stack.reuse_refresh_token(&session).await,
        }
        let (router, tasks) = stack.refused_after(&session.access, ended_at).await;
        eprintln!("{ending:?}: refused at the router after {router:?}, at tasks after {tasks:?}");

        let password = if matches!(ending, Ending::ChangePassword) { NEW_PASSWORD } else { PASSWORD };
        match ending {
            Ending::DeleteAccount => {
                let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
                let gone = stack.router.graphql(None, login, json!({ "e": email, "p": password })).await;
                assert_eq!(gone["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{gone}");
            }
            _ => stack.assert_works(&stack.sign("login", &email, password).await, "signed in afterwards").await,
        }
    }
}

#[tokio::test]
async fn with_the_jwks_down_at_start_tokens_get_503_with_retry_after_then_work_once_it_is_up() {
    let auth = spawn_auth().await;
    let auth_addr: SocketAddr = auth.running.address.trim_start_matches("http://").parse().expect("an address");
    let gate = TcpGate::start(auth_addr, false).await;
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[
            ("SUBGRAPH_AUTH_URL", format!("{}/graphql", auth.running.address)),
            ("JWKS_URL", format!("http://127.0.0.1:{}/.well-known/jwks.json", gate.port)),
        ],
    )
    .await;
    let register = "mutation { register(email: \"early@example.com\", password: \"before auth 1\") { accessToken } }";
    let registered = router.graphql(None, register, json!({})).await;
    let token = registered["data"]["register"]["accessToken"].as_str().unwrap_or_else(|| panic!("{registered}"));

    let response = router.post(Some(token), json!({ "query": "{ me { email } }" })).await;

    assert_eq!(response.status(), 503);
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    assert!(retry_after.is_some_and(|s| s >= 1), "Retry-After: {retry_after:?}");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAVAILABLE", "{body}");
    assert!(body.get("data").is_none(), "refused before any subgraph is called: {body}");

    gate.open();
    wait_for("the token to work once the JWKS can be fetched", || async {
        let body = router.graphql(Some(token), "{ me { email } }", json!({})).await;
        (body["data"]["me"]["email"] == "early@example.com").then_some(())
    })
    .await;
}
