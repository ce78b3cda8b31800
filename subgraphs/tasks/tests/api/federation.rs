//! The subgraph as the router sees it: SDL, entities, batching.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::spawn_app;

const TASK_ENTITIES: &str = r#"query($reps: [_Any!]!) {
    _entities(representations: $reps) { ... on Task { id title owner { id } } }
}"#;
const USER_ENTITIES: &str = r#"query($reps: [_Any!]!) {
    _entities(representations: $reps) { ... on User { id tasks(first: 2) { totalCount edges { node { title } } } } }
}"#;

#[tokio::test]
async fn service_sdl_declares_the_entities_and_shares_page_info() {
    let app = spawn_app().await;
    let response = app.graphql(None, "{ _service { sdl } }", json!({})).await;
    let sdl = response["data"]["_service"]["sdl"].as_str().unwrap();
    assert!(sdl.contains("https://specs.apollo.dev/federation/v2"), "{sdl}");
    assert!(sdl.contains("type Task @key(fields: \"id\")"), "{sdl}");
    assert!(sdl.contains("type User @key(fields: \"id\")"), "{sdl}");
    assert!(sdl.contains("type PageInfo @shareable"), "{sdl}");
}

#[tokio::test]
async fn many_task_entities_resolve_in_one_query_and_only_the_viewers() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user(), app.user());
    let mut reps = Vec::new();
    for i in 0..25 {
        let task = app.create_task(&alice, json!({ "title": format!("a{i}") })).await;
        reps.push(json!({ "__typename": "Task", "id": task["id"] }));
    }
    let bobs = app.create_task(&bob, json!({ "title": "bob's" })).await;
    reps.push(json!({ "__typename": "Task", "id": bobs["id"] }));
    reps.push(json!({ "__typename": "Task", "id": "not-a-uuid" }));

    let before = app.statements();
    let response = app.graphql(Some(&alice.token), TASK_ENTITIES, json!({ "reps": reps })).await;
    assert_eq!(app.statements(), before + 1, "one SQL query for 25 entities: {response}");

    let entities = response["data"]["_entities"].as_array().expect("entities");
    assert_eq!(entities.len(), 27);
    for (i, entity) in entities[..25].iter().enumerate() {
        assert_eq!(entity["title"], format!("a{i}"), "in representation order");
        assert_eq!(entity["owner"]["id"], alice.id.to_string());
    }
    assert!(entities[25].is_null(), "bob's task does not resolve for alice: {response}");
    assert!(entities[26].is_null());

    let anonymous = app.graphql(None, TASK_ENTITIES, json!({ "reps": reps })).await;
    assert!(anonymous["data"]["_entities"][0].is_null(), "{anonymous}");
}

#[tokio::test]
async fn user_entities_get_their_tasks_batched_and_nobody_sees_anothers() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user(), app.user());
    for title in ["one", "two", "three"] {
        app.create_task(&alice, json!({ "title": title })).await;
    }
    app.create_task(&bob, json!({ "title": "bob's" })).await;
    let mut reps = vec![json!({ "__typename": "User", "id": alice.id }); 3];
    reps.push(json!({ "__typename": "User", "id": bob.id }));
    reps.push(json!({ "__typename": "User", "id": Uuid::new_v4() }));

    let before = app.statements();
    let response = app.graphql(Some(&alice.token), USER_ENTITIES, json!({ "reps": reps })).await;
    assert_eq!(app.statements(), before + 1, "one query however many users: {response}");

    let entities = &response["data"]["_entities"];
    for i in 0..3 {
        assert_eq!(entities[i]["tasks"]["totalCount"], 3, "{response}");
        assert_eq!(
            entities[i]["tasks"]["edges"],
            json!([{ "node": { "title": "three" } }, { "node": { "title": "two" } }])
        );
    }
    assert_eq!(entities[3]["tasks"], json!({ "totalCount": 0, "edges": [] }), "bob's tasks stay bob's");
    assert_eq!(entities[4]["tasks"]["totalCount"], 0);
}

#[test]
fn committed_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema/tasks.graphql");
    let printed = tasks::schema::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &printed).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == printed,
        "schema/tasks.graphql is stale: run `cargo run -p tasks -- print-schema > schema/tasks.graphql`"
    );
}
