//! The real auth and tasks subgraphs behind the router, with the committed supergraph.

use serde_json::json;

use crate::helpers::spawn_auth_tasks_stack;

#[tokio::test]
async fn me_with_my_tasks_and_their_owner_across_two_subgraphs() {
    let (_auth, _tasks, router) = spawn_auth_tasks_stack(&[]).await;
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

#[tokio::test]
async fn deleting_the_account_deletes_its_tasks_through_the_event_bus() {
    let (_auth, tasks, router) = spawn_auth_tasks_stack(&[]).await;
    let password = "leaving soon 1";
    let registered = router
        .graphql(
            None,
            "mutation($p: String!) { register(email: \"leaver@example.com\", password: $p) { accessToken } }",
            json!({ "p": password }),
        )
        .await;
    let token =
        registered["data"]["register"]["accessToken"].as_str().unwrap_or_else(|| panic!("{registered}")).to_owned();
    for title in ["one", "two", "three"] {
        router
            .graphql(
                Some(&token),
                "mutation($t: String!) { createTask(input: { title: $t }) { id } }",
                json!({ "t": title }),
            )
            .await;
    }
    let count = "{ tasks { totalCount } }";
    assert_eq!(router.graphql(Some(&token), count, json!({})).await["data"]["tasks"]["totalCount"], 3);
    kit::testing::wait_for_consumer(tasks.queue.as_deref().expect("tasks consumes")).await;

    let deleted = router
        .graphql(Some(&token), "mutation($p: String!) { deleteAccount(password: $p) }", json!({ "p": password }))
        .await;
    assert_eq!(deleted["data"]["deleteAccount"], true, "{deleted}");

    // The access token outlives the account by its TTL: the tasks subgraph still
    // accepts it, and shows that nothing is left.
    kit::testing::eventually("the tasks to be deleted", || {
        let router = &router;
        let token = &token;
        async move { router.graphql(Some(token), count, json!({})).await["data"]["tasks"]["totalCount"] == 0 }
    })
    .await;
}
