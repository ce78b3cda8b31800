use serde_json::json;

use crate::helpers::spawn_app;

const USER_FILES: &str = r#"query($reps: [_Any!]!) {
    _entities(representations: $reps) { ... on User { id files { totalCount edges { node { filename } } } } }
}"#;
const FILES: &str = r#"query($reps: [_Any!]!) { _entities(representations: $reps) { ... on File { id filename } } }"#;

#[tokio::test]
async fn service_sdl_is_a_federation_v2_schema_with_the_keys() {
    let app = spawn_app().await;
    let response = app.graphql(None, "{ _service { sdl } }", json!({})).await;
    let sdl = response["data"]["_service"]["sdl"].as_str().unwrap();
    assert!(sdl.contains("https://specs.apollo.dev/federation/v2"), "{sdl}");
    assert!(sdl.contains("type User @key(fields: \"id\")"), "{sdl}");
    assert!(sdl.contains("type File @key(fields: \"id\")"), "{sdl}");
    assert!(sdl.contains("scalar Upload"), "{sdl}");
}

#[tokio::test]
async fn only_the_viewers_user_has_files() {
    let app = spawn_app().await;
    let (me, other) = (app.user(), app.user());
    app.uploaded(&me, "mine.txt", b"x").await;
    app.uploaded(&other, "theirs.txt", b"x").await;
    let reps = json!({ "reps": [
        { "__typename": "User", "id": me.id.to_string() },
        { "__typename": "User", "id": other.id.to_string() },
    ]});

    let response = app.graphql(Some(&me.token), USER_FILES, reps).await;

    let entities = &response["data"]["_entities"];
    assert_eq!(entities[0]["files"]["totalCount"], 1, "{response}");
    assert_eq!(entities[0]["files"]["edges"][0]["node"]["filename"], "mine.txt");
    assert_eq!(entities[1]["files"]["totalCount"], 0, "another user's files never show");
    assert_eq!(entities[1]["files"]["edges"], json!([]));
}

#[tokio::test]
async fn file_entities_resolve_in_one_query_and_only_the_viewers() {
    let app = spawn_app().await;
    let (me, other) = (app.user(), app.user());
    let mut reps = Vec::new();
    for i in 0..5 {
        let file = app.uploaded(&me, &format!("{i}.txt"), b"x").await;
        reps.push(json!({ "__typename": "File", "id": file["id"] }));
    }
    let theirs = app.uploaded(&other, "theirs.txt", b"x").await;
    reps.push(json!({ "__typename": "File", "id": theirs["id"] }));
    reps.push(json!({ "__typename": "File", "id": "not-a-uuid" }));
    let before = app.repository.owned_queries();

    let response = app.graphql(Some(&me.token), FILES, json!({ "reps": reps })).await;

    let entities = response["data"]["_entities"].as_array().unwrap_or_else(|| panic!("{response}"));
    assert_eq!(entities.len(), 7);
    for (i, entity) in entities.iter().take(5).enumerate() {
        assert_eq!(entity["filename"], format!("{i}.txt"));
    }
    assert!(entities[5].is_null(), "another user's file does not resolve: {response}");
    assert!(entities[6].is_null());
    assert_eq!(app.repository.owned_queries() - before, 1, "one query for all the files");
}

#[test]
fn committed_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema/files.graphql");
    let printed = files::schema::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &printed).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == printed,
        "schema/files.graphql is stale: run `cargo run -p files -- print-schema > schema/files.graphql`"
    );
}
