//! Partial answers while a subgraph is down, with every real service: the
//! fields one subgraph adds to another's type are nullable, so losing the
//! tasks subgraph costs `me.tasks` alone, never the whole `me`.

use serde_json::json;

use crate::helpers::spawn_stack;

const ME: &str = "{ me { email tasks { totalCount } files { totalCount } } }";

#[tokio::test]
async fn with_the_tasks_subgraph_down_me_keeps_its_email_and_files() {
    let (_auth, tasks, _files, router) = spawn_stack(&[]).await;
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
