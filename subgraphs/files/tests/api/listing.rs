use serde_json::json;

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
        app.graphql(Some(&owner.token), rename, json!({ "id": file["id"], "name": "sub/../new\u{0}.txt" })).await;
    let empty = app.graphql(Some(&owner.token), rename, json!({ "id": file["id"], "name": "..." })).await;
    let theirs = app.graphql(Some(&other.token), rename, json!({ "id": file["id"], "name": "mine.txt" })).await;

    assert_eq!(renamed["data"]["renameFile"]["filename"], "new.txt", "{renamed}");
    assert_eq!(renamed["data"]["renameFile"]["sha256"], file["sha256"]);
    assert_eq!(error_code(&empty), "BAD_USER_INPUT");
    assert_eq!(error_code(&theirs), "NOT_FOUND");
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
