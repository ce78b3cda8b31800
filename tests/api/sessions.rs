use kit::testing::wait_for;
use serde_json::{Value, json};

use crate::helpers::{Mode, TestMonolith, spawn_monolith, spawn_monolith_with};

/// `(HTTP status, code of the first error)` of `query` with `token` at `url`.
async fn answer(app: &TestMonolith, url: &str, token: &str, query: &str) -> (u16, Value) {
    let response = app.client.post(url).bearer_auth(token).json(&json!({ "query": query })).send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["errors"][0]["extensions"]["code"].clone())
}

/// logoutAll through the router: the earlier token is refused at the router
/// and at the tasks subgraph within seconds, a new one works.
async fn logout_all_ends_earlier_tokens_everywhere(app: &TestMonolith) {
    let (_, token) = app.register("ada@example.com", "analytical1").await;
    let tasks_url = format!("http://127.0.0.1:{}/graphql", app.ports.tasks);
    let my_tasks = "{ tasks(first: 1) { totalCount } }";
    assert_eq!(answer(app, &tasks_url, &token, my_tasks).await, (200, Value::Null));

    app.graphql(Some(&token), "mutation { logoutAll }", json!({})).await;

    let unauthenticated = json!("UNAUTHENTICATED");
    wait_for("the router to refuse the earlier token", || async {
        (answer(app, &app.api(), &token, "{ me { id } }").await == (401, unauthenticated.clone())).then_some(())
    })
    .await;
    wait_for("tasks to refuse the earlier token", || async {
        (answer(app, &tasks_url, &token, my_tasks).await == (200, unauthenticated.clone())).then_some(())
    })
    .await;
    let login = "mutation { login(email: \"ada@example.com\", password: \"analytical1\") { accessToken } }";
    let fresh = app.graphql(None, login, json!({})).await["login"]["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(app.graphql(Some(&fresh), "{ me { email } }", json!({})).await["me"]["email"], "ada@example.com");
}

#[tokio::test]
async fn with_brokers_logout_all_ends_earlier_tokens_at_the_router_and_the_subgraphs() {
    logout_all_ends_earlier_tokens_everywhere(&spawn_monolith(Mode::Brokers).await).await;
}

#[tokio::test]
async fn in_process_logout_all_ends_earlier_tokens_at_the_router_and_the_subgraphs() {
    logout_all_ends_earlier_tokens_everywhere(&spawn_monolith(Mode::InProcess).await).await;
}

/// Without a configured secret the monolith makes one: the router uses it
/// (every subgraph answers through it), while a subgraph called directly,
/// without it, refuses.
#[tokio::test]
async fn the_generated_router_secret_lets_only_the_router_reach_the_subgraphs() {
    let app = spawn_monolith_with(Mode::InProcess, None).await;
    let (_, token) = app.register("grace@example.com", "analytical1").await;

    let me = app.graphql(Some(&token), "{ me { email tasks { totalCount } files { totalCount } } }", json!({})).await;
    assert_eq!(
        me["me"],
        json!({ "email": "grace@example.com", "tasks": { "totalCount": 0 }, "files": { "totalCount": 0 } })
    );
    for port in [app.ports.auth, app.ports.tasks, app.ports.files] {
        let url = format!("http://127.0.0.1:{port}/graphql");
        let (status, code) = answer(&app, &url, &token, "{ __typename }").await;
        assert_eq!((status, code), (403, json!("FORBIDDEN")), "port {port}");
    }
}
