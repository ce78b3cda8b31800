use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use files::repository::page_sql;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::{error_code, spawn_app};

const LIST: &str = "query($first: Int, $after: String) {
    files(first: $first, after: $after) {
        totalCount edges { cursor node { filename } } pageInfo { hasNextPage endCursor }
    }
}";

fn names(response: &serde_json::Value) -> Vec<String> {
    response["data"]["files"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{response}"))
        .iter()
        .map(|e| e["node"]["filename"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn pages_go_newest_first_and_end() {
    let app = spawn_app().await;
    let user = app.user();
    for i in 0..5 {
        app.uploaded(&user, &format!("{i}.txt"), b"x").await;
    }
    app.uploaded(&app.user(), "someone-else.txt", b"x").await;

    let first = app.graphql(Some(&user.token), LIST, json!({ "first": 2 })).await;
    let after = first["data"]["files"]["pageInfo"]["endCursor"].clone();
    let second = app.graphql(Some(&user.token), LIST, json!({ "first": 2, "after": after })).await;
    let after = second["data"]["files"]["pageInfo"]["endCursor"].clone();
    let last = app.graphql(Some(&user.token), LIST, json!({ "first": 2, "after": after })).await;

    assert_eq!(names(&first), ["4.txt", "3.txt"]);
    assert_eq!(names(&second), ["2.txt", "1.txt"]);
    assert_eq!(names(&last), ["0.txt"]);
    assert_eq!(first["data"]["files"]["totalCount"], 5);
    assert_eq!(first["data"]["files"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(last["data"]["files"]["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn paging_arguments_are_checked() {
    let app = spawn_app().await;
    let user = app.user();

    let too_many = app.graphql(Some(&user.token), LIST, json!({ "first": 101 })).await;
    let bad_cursor = app.graphql(Some(&user.token), LIST, json!({ "after": "garbage" })).await;
    let anonymous = app.graphql(None, LIST, json!({})).await;

    assert_eq!(error_code(&too_many), "BAD_USER_INPUT");
    assert_eq!(too_many["errors"][0]["extensions"]["field"], "first");
    assert_eq!(bad_cursor["errors"][0]["extensions"]["field"], "after", "{bad_cursor}");
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn rename_cleans_the_new_name_and_is_the_owners_alone() {
    let app = spawn_app().await;
    let (owner, other) = (app.user(), app.user());
    let file = app.uploaded(&owner, "old.txt", b"x").await;
    let rename = "mutation($id: ID!, $name: String!) { renameFile(id: $id, filename: $name) { id filename sha256 } }";

    let renamed =
        app.graphql(Some(&owner.token), rename, json!({ "id": file["id"], "name": "sub/../new\u{202e}.txt" })).await;
    let empty = app.graphql(Some(&owner.token), rename, json!({ "id": file["id"], "name": "..." })).await;
    let theirs = app.graphql(Some(&other.token), rename, json!({ "id": file["id"], "name": "mine.txt" })).await;

    assert_eq!(renamed["data"]["renameFile"]["filename"], "new.txt", "{renamed}");
    assert_eq!(renamed["data"]["renameFile"]["sha256"], file["sha256"]);
    assert_eq!(error_code(&empty), "BAD_USER_INPUT");
    assert_eq!(error_code(&theirs), "NOT_FOUND");
}

#[tokio::test]
async fn a_name_with_control_characters_is_refused_not_cleaned() {
    let app = spawn_app().await;
    let owner = app.user();
    let file = app.uploaded(&owner, "old.txt", b"x").await;
    let rename = "mutation($id: ID!, $name: String!) { renameFile(id: $id, filename: $name) { filename } }";

    for name in ["new\u{0}.txt", "new\n.txt", "new\u{1b}[2J.txt", "new\u{9b}.txt"] {
        let response = app.graphql(Some(&owner.token), rename, json!({ "id": file["id"], "name": name })).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{name:?}: {response}");
        assert_eq!(response["errors"][0]["extensions"]["field"], "filename");
    }
    let list = app.graphql(Some(&owner.token), LIST, json!({})).await;
    assert_eq!(names(&list), ["old.txt"]);
}

/// A cursor as the service writes one (`<created_at in µs>:<id>`), with any time.
fn crafted_cursor(micros: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{micros}:{}", Uuid::new_v4()))
}

#[tokio::test]
async fn cursors_outside_the_times_postgres_holds_are_bad_user_input() {
    let app = spawn_app().await;
    let user = app.user();
    app.uploaded(&user, "a.txt", b"x").await;
    // Postgres holds 4714-11-24 BC to 294276 AD; chrono stops at 262142 AD.
    let earliest = -210_866_803_200_000_000_i64;
    let latest = chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp_micros();

    for micros in [i64::MIN, earliest - 1, latest + 1, i64::MAX] {
        let response = app.graphql(Some(&user.token), LIST, json!({ "after": crafted_cursor(micros) })).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{micros}: {response}");
        assert_eq!(response["errors"][0]["extensions"]["field"], "after");
    }
    let before_everything = app.graphql(Some(&user.token), LIST, json!({ "after": crafted_cursor(earliest) })).await;
    let after_everything = app.graphql(Some(&user.token), LIST, json!({ "after": crafted_cursor(latest) })).await;
    assert!(names(&before_everything).is_empty(), "{before_everything}");
    assert_eq!(names(&after_everything), ["a.txt"]);
}

#[tokio::test]
async fn a_page_after_a_cursor_is_bounded_by_the_index_even_in_a_generic_plan() {
    let app = spawn_app().await;
    let mut connection = PgConnection::connect_with(&app.pool.connect_options()).await.unwrap();
    // The plan a prepared statement settles on after a few runs, and an index
    // scan wherever one is possible (the table is empty).
    sqlx::raw_sql("SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off")
        .execute(&mut connection)
        .await
        .unwrap();
    let prepare = format!("PREPARE page_after (uuid, timestamptz, uuid, bigint) AS {}", page_sql(true));
    sqlx::raw_sql(sqlx::AssertSqlSafe(prepare)).execute(&mut connection).await.unwrap();

    let plan: Vec<String> =
        sqlx::query_scalar("EXPLAIN EXECUTE page_after (gen_random_uuid(), now(), gen_random_uuid(), 21)")
            .fetch_all(&mut connection)
            .await
            .unwrap();

    let plan = plan.join("\n");
    let index_bounds: Vec<&str> = plan.lines().filter(|l| l.trim_start().starts_with("Index Cond:")).collect();
    assert!(
        index_bounds.iter().any(|bound| bound.contains("created_at")),
        "the cursor is not a bound of the index scan:\n{plan}"
    );
    assert!(!plan.contains("Sort"), "the index gives the order:\n{plan}");
}

#[tokio::test]
async fn delete_removes_row_and_blob_and_another_users_file_is_not_found() {
    let app = spawn_app().await;
    let (owner, other) = (app.user(), app.user());
    let file = app.uploaded(&owner, "a.txt", b"x").await;
    let delete = "mutation($id: ID!) { deleteFile(id: $id) }";
    let read = "query($id: ID!) { file(id: $id) { id } }";

    let theirs = app.graphql(Some(&other.token), delete, json!({ "id": file["id"] })).await;
    let their_read = app.graphql(Some(&other.token), read, json!({ "id": file["id"] })).await;
    assert_eq!(error_code(&theirs), "NOT_FOUND");
    assert_eq!(error_code(&their_read), "NOT_FOUND");
    assert_eq!(app.blobs().len(), 1);

    let mine = app.graphql(Some(&owner.token), delete, json!({ "id": file["id"] })).await;
    let again = app.graphql(Some(&owner.token), delete, json!({ "id": file["id"] })).await;
    let read = app.graphql(Some(&owner.token), read, json!({ "id": file["id"] })).await;

    assert_eq!(mine["data"]["deleteFile"], true, "{mine}");
    assert_eq!(error_code(&again), "NOT_FOUND");
    assert_eq!(error_code(&read), "NOT_FOUND");
    assert!(app.blobs().is_empty(), "the blob went with the row");
    assert_eq!(app.repository.pending_blob_deletions().await.unwrap(), 0);
}
