//! Partial answers while a subgraph is down, with every real service: the
//! fields one subgraph adds to another's type are nullable, so losing the
//! tasks subgraph costs `me.tasks` alone, never the whole `me`.

use serde_json::json;

use crate::helpers::{repo_path, spawn_auth, spawn_files, spawn_router, spawn_tasks};

const ME: &str = "{ me { email tasks { totalCount } files { totalCount } } }";

#[tokio::test]
async fn with_the_tasks_subgraph_down_me_keeps_its_email_and_files() {
    let auth = spawn_auth().await;
    let tasks = spawn_tasks(&auth).await;
    let files = spawn_files(&auth).await;
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[
            ("SUBGRAPH_AUTH_URL", format!("{}/graphql", auth.running.address)),
            ("JWKS_URL", format!("{}/.well-known/jwks.json", auth.running.address)),
            ("SUBGRAPH_TASKS_URL", format!("{}/graphql", tasks.running.address)),
            ("SUBGRAPH_FILES_URL", format!("{}/graphql", files.running.address)),
        ],
    )
    .await;
    let registered = router
        .graphql(
            None,
            "mutation { register(email: \"outage@example.com\", password: \"through it all 1\") { accessToken } }",
            json!({}),
        )
        .await;
    let token = registered["data"]["register"]["accessToken"].as_str().unwrap_or_else(|| panic!("{registered}"));
    let before = router.graphql(Some(token), ME, json!({})).await;
    assert_eq!(
        before,
        json!({ "data": { "me": { "email": "outage@example.com", "tasks": { "totalCount": 0 }, "files": { "totalCount": 0 } } } })
    );
    let tasks_address = tasks.running.address.trim_start_matches("http://").to_owned();
    drop(tasks.running);
    kit::testing::wait_for("the tasks subgraph to stop listening", || async {
        tokio::net::TcpStream::connect(&tasks_address).await.is_err().then_some(())
    })
    .await;

    let during = router.graphql(Some(token), ME, json!({})).await;

    assert_eq!(
        during["data"],
        json!({ "me": { "email": "outage@example.com", "tasks": null, "files": { "totalCount": 0 } } }),
        "{during}"
    );
    let errors = during["errors"].as_array().unwrap_or_else(|| panic!("{during}"));
    assert_eq!(errors.len(), 1, "{during}");
    assert_eq!(errors[0]["extensions"]["code"], "SUBGRAPH_UNAVAILABLE", "{during}");
    assert_eq!(errors[0]["extensions"]["serviceName"], "tasks", "{during}");
    // The router puts a failed entity fetch's error at the path of the
    // entities it was to extend (as Apollo Router does), not at each field
    // it would have added.
    assert_eq!(errors[0]["path"], json!(["me"]), "{during}");
}
