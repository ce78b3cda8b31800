//! The real auth and tasks subgraphs behind the router, with the committed supergraph.

use serde_json::json;

use crate::helpers::{repo_path, spawn_auth, spawn_router, spawn_tasks};

#[tokio::test]
async fn me_with_my_tasks_and_their_owner_across_two_subgraphs() {
    let auth = spawn_auth().await;
    let tasks = spawn_tasks(&auth).await;
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[
            ("SUBGRAPH_AUTH_URL", format!("{}/graphql", auth.running.address)),
            ("SUBGRAPH_TASKS_URL", format!("{}/graphql", tasks.running.address)),
        ],
    )
    .await;
    let registered = router
        .graphql(
            None,
            "mutation { register(email: \"tasks@example.com\", password: \"through the router 1\") { accessToken } }",
            json!({}),
        )
        .await;
    let token =
        registered["data"]["register"]["accessToken"].as_str().unwrap_or_else(|| panic!("{registered}")).to_owned();

    for title in ["first", "second"] {
        let created = router
            .graphql(
                Some(&token),
                "mutation($t: String!) { createTask(input: { title: $t }) { id title status owner { email } } }",
                json!({ "t": title }),
            )
            .await;
        assert_eq!(created["data"]["createTask"]["owner"]["email"], "tasks@example.com", "{created}");
    }

    let me = router
        .graphql(
            Some(&token),
            "{ me { email tasks(first: 1) { totalCount pageInfo { hasNextPage } edges { node { title owner { email } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me,
        json!({ "data": { "me": {
            "email": "tasks@example.com",
            "tasks": {
                "totalCount": 2,
                "pageInfo": { "hasNextPage": true },
                "edges": [{ "node": { "title": "second", "owner": { "email": "tasks@example.com" } } }]
            }
        }}})
    );

    let anonymous = router.graphql(None, "{ tasks { totalCount } }", json!({})).await;
    assert_eq!(anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{anonymous}");
    let invalid = router.graphql(Some(&token), "{ task(id: \"abc\") { id } }", json!({})).await;
    assert_eq!(invalid["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{invalid}");
    assert_eq!(invalid["errors"][0]["path"], json!(["task"]));
}
