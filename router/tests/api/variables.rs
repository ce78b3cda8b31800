//! Variables are coerced against their declared types at the router: a wrongly
//! typed value is the client's request error, never a subgraph's failure.

use serde_json::{Value, json};

use crate::helpers::spawn_auth_tasks_stack;

#[tokio::test]
async fn wrongly_typed_variables_are_request_errors_and_good_ones_reach_the_subgraph_coerced() {
    let (_auth, _tasks, router) = spawn_auth_tasks_stack(&[]).await;
    let registered = router
        .graphql(
            None,
            "mutation { register(email: \"variables@example.com\", password: \"typed values 1\") { accessToken } }",
            json!({}),
        )
        .await;
    let token = registered["data"]["register"]["accessToken"].as_str().unwrap_or_else(|| panic!("{registered}"));
    let create = "mutation($input: CreateTaskInput!) { createTask(input: $input) { title status } }";
    let page = "query($n: Int, $s: TaskStatus) { tasks(first: $n, status: $s) { totalCount } }";

    for (query, variables, message) in [
        (
            create,
            json!({ "input": { "title": "t", "status": "SOON" } }),
            "Variable \"$input\" got invalid value \"SOON\" at \"input.status\"; \
             Value \"SOON\" does not exist in \"TaskStatus\" enum.",
        ),
        (
            create,
            json!({ "input": { "title": "t", "owner": "someone else" } }),
            "Variable \"$input\" got invalid value {\"title\":\"t\",\"owner\":\"someone else\"}; \
             Field \"owner\" is not defined by type \"CreateTaskInput\".",
        ),
        (
            create,
            json!({ "input": { "description": "no title" } }),
            "Variable \"$input\" got invalid value {\"description\":\"no title\"}; \
             Field \"title\" of required type \"String!\" was not provided.",
        ),
        (
            page,
            json!({ "n": "10" }),
            "Variable \"$n\" got invalid value \"10\"; Int cannot represent non-integer value: \"10\"",
        ),
        (
            page,
            json!({ "n": 3_000_000_000_i64 }),
            "Variable \"$n\" got invalid value 3000000000; Int cannot represent non 32-bit signed integer value: 3000000000",
        ),
    ] {
        let refused = router.graphql(Some(token), query, variables).await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
        assert_eq!(refused["errors"][0]["message"], message, "{refused}");
        assert!(refused.get("data").is_none(), "a request error has no data: {refused}");
    }

    // Coerced values reach the subgraph: `first` given as 2.0 is the Int 2, an ID given as an integer a string.
    let created = router.graphql(Some(token), create, json!({ "input": { "title": "typed" } })).await;
    assert_eq!(created, json!({ "data": { "createTask": { "title": "typed", "status": "TODO" } } }));
    let listed = router.graphql(Some(token), page, json!({ "n": 2.0, "s": "TODO" })).await;
    assert_eq!(listed, json!({ "data": { "tasks": { "totalCount": 1 } } }), "{listed}");
    let by_id: Value =
        router.graphql(Some(token), "query($id: ID!) { task(id: $id) { id } }", json!({ "id": 42 })).await;
    let code = by_id["errors"][0]["extensions"]["code"].as_str().unwrap_or_default().to_owned();
    assert!(code != "INTERNAL" && !code.is_empty(), "an integer ID reaches the subgraph as a string: {by_id}");
}
