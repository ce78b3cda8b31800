//! Creating, reading, updating and deleting tasks, with the seed's cases first.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TASK_FIELDS, error_code, error_field, spawn_app};

const CREATE: &str = "mutation($input: CreateTaskInput!) { createTask(input: $input) { id title status } }";
const UPDATE: &str = "mutation($id: ID!, $input: UpdateTaskInput!) {
    updateTask(id: $id, input: $input) { id title description status dueAt createdAt updatedAt }
}";
const DELETE: &str = "mutation($id: ID!) { deleteTask(id: $id) }";
const TASK: &str = "query($id: ID!) { task(id: $id) { id title description status } }";

// Seed 1: "should create a task successfully".
#[tokio::test]
async fn creating_a_task_returns_it_with_defaults() {
    let app = spawn_app().await;
    let user = app.user();

    let task = app.create_task(&user, json!({ "title": "  Write the report  ", "description": "by Friday" })).await;

    assert_eq!(task["title"], "Write the report", "title is trimmed");
    assert_eq!(task["description"], "by Friday");
    assert_eq!(task["status"], "TODO");
    assert!(task["dueAt"].is_null());
    assert_eq!(task["createdAt"], task["updatedAt"]);
    assert!(Uuid::parse_str(task["id"].as_str().unwrap()).is_ok());
}

// Seed 2: "should reject task creation without title" — and every other title rule.
#[tokio::test]
async fn invalid_titles_and_descriptions_are_bad_user_input_naming_the_field() {
    let app = spawn_app().await;
    let user = app.user();
    let cases = [
        (json!({ "title": "" }), "input.title"),
        (json!({ "title": "   " }), "input.title"),
        (json!({ "title": "x".repeat(201) }), "input.title"),
        (json!({ "title": "ok", "description": "d".repeat(5_001) }), "input.description"),
        (json!({ "title": "ok", "dueAt": "0100-01-01T00:00:00Z" }), "input.dueAt"),
    ];
    for (input, field) in cases {
        let response = app.graphql(Some(&user.token), CREATE, json!({ "input": input })).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
        assert_eq!(error_field(&response), field, "{response}");
    }
    let missing = app.graphql(Some(&user.token), CREATE, json!({ "input": {} })).await;
    assert!(missing["errors"][0]["message"].as_str().unwrap().contains("title"), "{missing}");

    let boundary = app.create_task(&user, json!({ "title": "é".repeat(200), "description": "d".repeat(5_000) })).await;
    assert_eq!(boundary["title"].as_str().unwrap().chars().count(), 200);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks.tasks").fetch_one(app.pool()).await.unwrap();
    assert_eq!(count, 1, "nothing invalid was stored");
}

// Seeds 3 and 6: "should reject ... without auth token" — for every operation.
#[tokio::test]
async fn every_operation_needs_a_valid_token() {
    let app = spawn_app().await;
    let user = app.user();
    let id = Uuid::new_v4().to_string();
    let operations = [
        (CREATE, json!({ "input": { "title": "t" } })),
        (UPDATE, json!({ "id": id, "input": { "title": "t" } })),
        (DELETE, json!({ "id": id })),
        (TASK, json!({ "id": id })),
        ("{ tasks { totalCount } }", json!({})),
    ];
    let expired = app.issuer.expired_token(user.id);
    let wrong_type = app.issuer.token_with(user.id, 600, "refresh");
    for token in [None, Some("not-a-jwt"), Some(expired.as_str()), Some(wrong_type.as_str())] {
        for (query, variables) in &operations {
            let response = app.graphql(token, query, variables.clone()).await;
            assert_eq!(error_code(&response), "UNAUTHENTICATED", "{query} with {token:?}: {response}");
        }
    }
}

// Seeds 7 and 8: delete, and 404 for a task that does not exist.
#[tokio::test]
async fn deleting_removes_the_task_and_a_second_delete_is_not_found() {
    let app = spawn_app().await;
    let user = app.user();
    let task = app.create_task(&user, json!({ "title": "temporary" })).await;

    let deleted = app.graphql(Some(&user.token), DELETE, json!({ "id": task["id"] })).await;
    assert_eq!(deleted["data"]["deleteTask"], true, "{deleted}");

    let again = app.graphql(Some(&user.token), DELETE, json!({ "id": task["id"] })).await;
    assert_eq!(error_code(&again), "NOT_FOUND", "{again}");
    let read = app.graphql(Some(&user.token), TASK, json!({ "id": task["id"] })).await;
    assert_eq!(error_code(&read), "NOT_FOUND", "{read}");
}

// Seed 9: "should reject invalid task ID" (`abc`).
#[tokio::test]
async fn ids_that_are_not_uuids_are_bad_user_input() {
    let app = spawn_app().await;
    let user = app.user();
    for (query, variables) in
        [(DELETE, json!({ "id": "abc" })), (TASK, json!({ "id": "1" })), (UPDATE, json!({ "id": "abc", "input": {} }))]
    {
        let response = app.graphql(Some(&user.token), query, variables).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
        assert_eq!(error_field(&response), "id");
    }
}

#[tokio::test]
async fn another_users_task_is_not_found_for_read_update_and_delete() {
    let app = spawn_app().await;
    let (alice, mallory) = (app.user(), app.user());
    let task = app.create_task(&alice, json!({ "title": "alice's secret" })).await;

    for (query, variables) in [
        (TASK, json!({ "id": task["id"] })),
        (UPDATE, json!({ "id": task["id"], "input": { "title": "pwned" } })),
        (UPDATE, json!({ "id": task["id"], "input": {} })),
        (DELETE, json!({ "id": task["id"] })),
    ] {
        let response = app.graphql(Some(&mallory.token), query, variables).await;
        assert_eq!(error_code(&response), "NOT_FOUND", "{response}");
        assert_eq!(response["errors"][0]["message"], "Task not found", "same answer as a missing id");
    }
    let listed = app.tasks_page(&mallory, json!({})).await;
    assert_eq!(listed["totalCount"], 0);

    let untouched = app.graphql(Some(&alice.token), TASK, json!({ "id": task["id"] })).await;
    assert_eq!(untouched["data"]["task"]["title"], "alice's secret", "{untouched}");
}

#[tokio::test]
async fn updates_change_only_the_given_fields_and_null_clears() {
    let app = spawn_app().await;
    let user = app.user();
    let task = app
        .create_task(
            &user,
            json!({ "title": "draft", "description": "notes", "dueAt": "2030-01-02T03:04:05Z", "status": "TODO" }),
        )
        .await;

    let status_only =
        app.graphql(Some(&user.token), UPDATE, json!({ "id": task["id"], "input": { "status": "IN_PROGRESS" } })).await;
    let updated = &status_only["data"]["updateTask"];
    assert_eq!(updated["status"], "IN_PROGRESS", "{status_only}");
    assert_eq!(updated["title"], "draft");
    assert_eq!(updated["description"], "notes");
    assert_eq!(updated["dueAt"], "2030-01-02T03:04:05+00:00");
    assert_eq!(updated["createdAt"], task["createdAt"]);
    assert!(updated["updatedAt"].as_str().unwrap() > task["updatedAt"].as_str().unwrap(), "updatedAt moves");

    let cleared = app
        .graphql(
            Some(&user.token),
            UPDATE,
            json!({ "id": task["id"], "input": { "description": null, "dueAt": null, "title": " final " } }),
        )
        .await;
    let updated = &cleared["data"]["updateTask"];
    assert_eq!(updated["title"], "final", "{cleared}");
    assert!(updated["description"].is_null());
    assert!(updated["dueAt"].is_null());
    assert_eq!(updated["status"], "IN_PROGRESS");

    let nothing = app.graphql(Some(&user.token), UPDATE, json!({ "id": task["id"], "input": {} })).await;
    assert_eq!(nothing["data"]["updateTask"], *updated, "an empty change changes nothing");
}

#[tokio::test]
async fn update_rejects_what_create_rejects_and_fields_that_cannot_be_null() {
    let app = spawn_app().await;
    let user = app.user();
    let task = app.create_task(&user, json!({ "title": "keep me" })).await;
    for (input, field) in [
        (json!({ "title": null }), "input.title"),
        (json!({ "status": null }), "input.status"),
        (json!({ "title": "" }), "input.title"),
        (json!({ "title": "t".repeat(201) }), "input.title"),
        (json!({ "description": "d".repeat(5_001) }), "input.description"),
    ] {
        let response = app.graphql(Some(&user.token), UPDATE, json!({ "id": task["id"], "input": input })).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
        assert_eq!(error_field(&response), field, "{response}");
    }
    let bad_status =
        app.graphql(Some(&user.token), UPDATE, json!({ "id": task["id"], "input": { "status": "pending" } })).await;
    assert!(bad_status["errors"].is_array(), "an unknown status is refused: {bad_status}");

    let read = app.graphql(Some(&user.token), TASK, json!({ "id": task["id"] })).await;
    assert_eq!(read["data"]["task"]["title"], "keep me", "{read}");
}

#[tokio::test]
async fn a_task_reads_back_with_every_field() {
    let app = spawn_app().await;
    let user = app.user();
    let task = app
        .create_task(&user, json!({ "title": "read me", "status": "DONE", "dueAt": "2031-05-06T07:08:09.123456Z" }))
        .await;
    let response = app
        .graphql(
            Some(&user.token),
            &format!("query($id: ID!) {{ task(id: $id) {{ {TASK_FIELDS} }} }}"),
            json!({ "id": task["id"] }),
        )
        .await;
    assert_eq!(response["data"]["task"], task, "{response}");
    assert_eq!(task["dueAt"], "2031-05-06T07:08:09.123456+00:00", "microseconds survive");
}

#[tokio::test]
async fn control_characters_are_refused_and_bidi_controls_leave_titles() {
    let app = spawn_app().await;
    let user = app.user();
    let task = app.create_task(&user, json!({ "title": "keep me", "description": "as written" })).await;
    let refused = [
        (json!({ "title": "nul \u{0} inside" }), "input.title"),
        (json!({ "title": "tab\tinside" }), "input.title"),
        (json!({ "title": "ok", "description": "nul \u{0} inside" }), "input.description"),
        (json!({ "title": "ok", "description": "escape \u{1b}[2J" }), "input.description"),
        (json!({ "title": "ok", "description": "C1 \u{9b}2J" }), "input.description"),
        (json!({ "title": "ok", "description": "a lone \r carriage return" }), "input.description"),
        (json!({ "title": "\u{202e}\u{2066} \u{2069}" }), "input.title"),
    ];

    for (input, field) in refused {
        let created = app.graphql(Some(&user.token), CREATE, json!({ "input": input.clone() })).await;
        let updated = app.graphql(Some(&user.token), UPDATE, json!({ "id": task["id"], "input": input })).await;
        for response in [created, updated] {
            assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
            assert_eq!(error_field(&response), field, "{response}");
        }
    }
    let kept = app
        .create_task(
            &user,
            json!({ "title": " evil\u{202e}fdp.exe\u{2067} ", "description": "line 1\nline 2\r\n\tindented 👨‍👩‍👧" }),
        )
        .await;

    assert_eq!(kept["title"], "evilfdp.exe", "bidi controls leave the title");
    assert_eq!(kept["description"], "line 1\nline 2\r\n\tindented 👨‍👩‍👧", "descriptions keep line breaks and tabs");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks.tasks").fetch_one(app.pool()).await.unwrap();
    assert_eq!(count, 2, "nothing refused was stored");
    let read = app.graphql(Some(&user.token), TASK, json!({ "id": task["id"] })).await;
    assert_eq!(read["data"]["task"]["description"], "as written", "{read}");
}
