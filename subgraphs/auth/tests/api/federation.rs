use serde_json::json;

use crate::helpers::spawn_app;

const ENTITIES: &str = r#"query($reps: [_Any!]!) { _entities(representations: $reps) { ... on User { id email } } }"#;

#[tokio::test]
async fn service_sdl_is_a_federation_v2_schema_with_the_user_key() {
    let app = spawn_app().await;
    let response = app.graphql(None, "{ _service { sdl } }", json!({})).await;
    let sdl = response["data"]["_service"]["sdl"].as_str().unwrap();
    assert!(sdl.contains("https://specs.apollo.dev/federation/v2"), "{sdl}");
    assert!(sdl.contains("type User @key(fields: \"id\")"), "{sdl}");
}

#[tokio::test]
async fn entities_resolve_the_viewer_and_nobody_else() {
    let app = spawn_app().await;
    let me = app.signed_up().await;
    let other = app.signed_up().await;
    let reps = json!({ "reps": [
        { "__typename": "User", "id": me.user_id },
        { "__typename": "User", "id": other.user_id },
        { "__typename": "User", "id": "not-a-uuid" }
    ]});

    let response = app.graphql(Some(&me.access_token), ENTITIES, reps.clone()).await;

    let entities = &response["data"]["_entities"];
    assert_eq!(entities[0]["id"], me.user_id.as_str(), "{response}");
    assert!(entities[0]["email"].as_str().unwrap().ends_with("@example.com"));
    assert!(entities[1].is_null(), "another user's data must not leak: {response}");
    assert!(entities[2].is_null());
    let anonymous = app.graphql(None, ENTITIES, reps).await;
    assert!(anonymous["data"]["_entities"][0].is_null());
}

#[test]
fn committed_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema/auth.graphql");
    let printed = auth::schema::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &printed).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == printed,
        "schema/auth.graphql is stale: run `cargo run -p auth -- print-schema > schema/auth.graphql`"
    );
}
