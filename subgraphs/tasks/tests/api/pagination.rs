//! Keyset pages: boundaries, orderings with ties, filters and totals.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, User, error_code, error_field, spawn_app, titles};

async fn create_numbered(app: &TestApp, user: &User, n: usize) {
    for i in 0..n {
        app.create_task(user, json!({ "title": format!("task {i:02}") })).await;
    }
}

/// Every page of a listing, following `endCursor`.
async fn all_pages(app: &TestApp, user: &User, mut arguments: Value) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    loop {
        let page = app.tasks_page(user, arguments.clone()).await;
        pages.push(titles(&page));
        if page["pageInfo"]["hasNextPage"] != true {
            return pages;
        }
        arguments["after"] = page["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test]
async fn pages_walk_every_task_once_newest_first_with_exact_boundaries() {
    let app = spawn_app().await;
    let user = app.user();
    create_numbered(&app, &user, 6).await;

    let pages = all_pages(&app, &user, json!({ "first": 3 })).await;
    assert_eq!(pages, [vec!["task 05", "task 04", "task 03"], vec!["task 02", "task 01", "task 00"]]);

    let exact = app.tasks_page(&user, json!({ "first": 6 })).await;
    assert_eq!(exact["pageInfo"]["hasNextPage"], false, "exactly all: no next page");
    assert_eq!(exact["totalCount"], 6);
    let over = app.tasks_page(&user, json!({ "first": 5 })).await;
    assert_eq!(over["pageInfo"]["hasNextPage"], true);

    let last = exact["pageInfo"]["endCursor"].clone();
    let beyond = app.tasks_page(&user, json!({ "after": last })).await;
    assert_eq!(beyond["edges"], json!([]));
    assert_eq!(beyond["pageInfo"], json!({ "hasNextPage": false, "endCursor": null }));
    assert_eq!(beyond["totalCount"], 6, "the total ignores the cursor");

    let none = app.tasks_page(&user, json!({ "first": 0 })).await;
    assert_eq!(none["edges"], json!([]));
    assert_eq!(none["totalCount"], 6);
    assert_eq!(none["pageInfo"]["hasNextPage"], true);
}

#[tokio::test]
async fn the_default_page_is_twenty_and_at_most_a_hundred_may_be_asked_for() {
    let app = spawn_app().await;
    let user = app.user();
    create_numbered(&app, &user, 21).await;

    let default = app.tasks_page(&user, json!({})).await;
    assert_eq!(default["edges"].as_array().unwrap().len(), 20);
    assert_eq!(default["pageInfo"]["hasNextPage"], true);

    for first in [101, -1] {
        let response = app
            .graphql(
                Some(&user.token),
                "query($first: Int) { tasks(first: $first) { totalCount } }",
                json!({ "first": first }),
            )
            .await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
        assert_eq!(error_field(&response), "first");
    }
}

#[tokio::test]
async fn ties_are_broken_by_id_so_pages_never_skip_or_repeat() {
    let app = spawn_app().await;
    let user = app.user();
    create_numbered(&app, &user, 7).await;
    // Every row gets the same timestamps: only the id can order them.
    sqlx::query(
        "UPDATE tasks.tasks SET created_at = '2030-01-01Z', updated_at = '2030-01-01Z', due_at = '2031-01-01Z'",
    )
    .execute(app.pool())
    .await
    .unwrap();

    for order in [
        json!({ "field": "CREATED_AT", "direction": "DESC" }),
        json!({ "field": "UPDATED_AT", "direction": "ASC" }),
        json!({ "field": "DUE_AT", "direction": "DESC" }),
    ] {
        let whole = titles(&app.tasks_page(&user, json!({ "first": 100, "orderBy": order })).await);
        let paged: Vec<String> = all_pages(&app, &user, json!({ "first": 2, "orderBy": order })).await.concat();
        assert_eq!(paged, whole, "paging {order} agrees with one big page");
        let mut sorted = whole.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 7, "every task exactly once under {order}");
    }
}

#[tokio::test]
async fn due_dates_order_both_ways_with_undated_tasks_last() {
    let app = spawn_app().await;
    let user = app.user();
    for (title, due) in
        [("b", json!("2030-02-01T00:00:00Z")), ("none", json!(null)), ("a", json!("2030-01-01T00:00:00Z"))]
    {
        app.create_task(&user, json!({ "title": title, "dueAt": due })).await;
    }
    for (direction, expected) in [("ASC", ["a", "b", "none"]), ("DESC", ["b", "a", "none"])] {
        let order = json!({ "field": "DUE_AT", "direction": direction });
        let pages = all_pages(&app, &user, json!({ "first": 1, "orderBy": order })).await;
        assert_eq!(pages.concat(), expected, "{direction}");
    }
    let by_update = app.tasks_page(&user, json!({ "orderBy": { "field": "UPDATED_AT" } })).await;
    assert_eq!(titles(&by_update), ["b", "none", "a"], "direction defaults to ASC");
}

#[tokio::test]
async fn a_status_filter_applies_to_pages_and_the_total() {
    let app = spawn_app().await;
    let user = app.user();
    for (title, status) in [("one", "DONE"), ("two", "TODO"), ("three", "DONE"), ("four", "IN_PROGRESS")] {
        app.create_task(&user, json!({ "title": title, "status": status })).await;
    }
    let done = app.tasks_page(&user, json!({ "status": "DONE", "first": 1 })).await;
    assert_eq!(done["totalCount"], 2);
    assert_eq!(titles(&done), ["three"]);
    let rest = app.tasks_page(&user, json!({ "status": "DONE", "after": done["pageInfo"]["endCursor"] })).await;
    assert_eq!(titles(&rest), ["one"]);
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn bad_and_foreign_cursors_are_bad_user_input() {
    let app = spawn_app().await;
    let user = app.user();
    create_numbered(&app, &user, 2).await;
    let page = app.tasks_page(&user, json!({ "first": 1 })).await;
    let cursor = page["pageInfo"]["endCursor"].clone();

    let query = "query($after: String, $orderBy: TaskOrder) { tasks(after: $after, orderBy: $orderBy) { totalCount } }";
    for variables in [
        json!({ "after": "garbage" }),
        json!({ "after": "x".repeat(10_000) }),
        json!({ "after": cursor, "orderBy": { "field": "DUE_AT" } }),
    ] {
        let response = app.graphql(Some(&user.token), query, variables).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
        assert_eq!(error_field(&response), "after");
    }
}

/// A cursor as the service writes one (`v1:<order>:<key in µs>:<id>`), with any key.
fn crafted_cursor(order: &str, key: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{order}:{key}:{}", Uuid::new_v4().simple()))
}

#[tokio::test]
async fn cursors_with_keys_outside_the_times_postgres_holds_are_bad_user_input() {
    let app = spawn_app().await;
    let user = app.user();
    app.create_task(&user, json!({ "title": "dated", "dueAt": "2030-01-01T00:00:00Z" })).await;
    // Postgres holds 4714-11-24 BC to 294276 AD; chrono stops at 262142 AD.
    let earliest = -210_866_803_200_000_000_i64;
    let latest = chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp_micros();
    let query = "query($after: String, $orderBy: TaskOrder) {
        tasks(after: $after, orderBy: $orderBy) { edges { node { title } } }
    }";
    let orders = [
        ("ca", "CREATED_AT", "ASC"),
        ("cd", "CREATED_AT", "DESC"),
        ("ua", "UPDATED_AT", "ASC"),
        ("ud", "UPDATED_AT", "DESC"),
        ("da", "DUE_AT", "ASC"),
        ("dd", "DUE_AT", "DESC"),
    ];

    for (code, field, direction) in orders {
        let order_by = json!({ "field": field, "direction": direction });
        for key in [i64::MIN, earliest - 1, latest + 1, i64::MAX] {
            let after = crafted_cursor(code, key);
            let response = app.graphql(Some(&user.token), query, json!({ "after": after, "orderBy": order_by })).await;
            assert_eq!(error_code(&response), "BAD_USER_INPUT", "{code} {key}: {response}");
            assert_eq!(error_field(&response), "after");
        }
        for key in [earliest, latest] {
            let after = crafted_cursor(code, key);
            let response = app.graphql(Some(&user.token), query, json!({ "after": after, "orderBy": order_by })).await;
            assert!(response["errors"].is_null(), "{code} {key}: {response}");
        }
    }
}
