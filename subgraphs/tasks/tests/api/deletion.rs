//! Deletion is final: once `user.deleted` has been applied, the account's
//! still-valid token creates nothing, and no write racing the cascade leaves a
//! row behind in any table of the schema.

use kit::testing::eventually;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::cascade::{Broker, user_deleted};
use crate::helpers::{TASK_FIELDS, TestApp, User, error_code, spawn_app};
use kit::testing::rows_of_user;

const CREATE: &str = "mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }";

async fn create(app: &TestApp, user: &User, title: &str) -> Value {
    app.graphql(Some(&user.token), CREATE, json!({ "input": { "title": title } })).await
}

async fn processed_events(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tasks.processed_events").fetch_one(app.pool()).await.unwrap()
}

/// Waits until `events` events have been applied (their transactions committed).
async fn until_processed(app: &TestApp, events: i64) {
    eventually("the cascade to commit", || async { processed_events(app).await == events }).await;
}

/// Backends of the app's database waiting for a lock of this kind (`advisory`,
/// `transactionid`, ...).
async fn waiting_for(app: &TestApp, lock: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = $1",
    )
    .bind(lock)
    .fetch_one(app.pool())
    .await
    .unwrap()
}

async fn assert_nothing_left(app: &TestApp, user: &User) {
    let left = rows_of_user(app.pool(), "tasks", user.id).await;
    assert!(left.is_empty(), "rows of the deleted user are left: {left:?}");
}

#[tokio::test]
async fn after_the_cascade_the_old_token_can_write_nothing() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user(), app.user());
    let task = app.create_task(&alice, json!({ "title": "before" })).await;
    let broker = Broker::for_app(&app).await;

    broker.publish(&user_deleted(Uuid::now_v7(), json!({ "userId": alice.id }))).await;
    until_processed(&app, 1).await;
    let created = create(&app, &alice, "after").await;
    let updated = app
        .graphql(
            Some(&alice.token),
            &format!("mutation($id: ID!) {{ updateTask(id: $id, input: {{ title: \"again\" }}) {{ {TASK_FIELDS} }} }}"),
            json!({ "id": task["id"] }),
        )
        .await;
    let deleted = app
        .graphql(Some(&alice.token), "mutation($id: ID!) { deleteTask(id: $id) }", json!({ "id": task["id"] }))
        .await;

    assert_eq!(error_code(&created), "UNAUTHENTICATED", "{created}");
    assert_eq!(created["errors"][0]["message"], "This account no longer exists", "{created}");
    assert!(created["data"].is_null(), "{created}");
    assert_eq!(error_code(&updated), "NOT_FOUND", "an update resurrects nothing: {updated}");
    assert_eq!(error_code(&deleted), "NOT_FOUND", "{deleted}");
    assert_nothing_left(&app, &alice).await;
    assert!(create(&app, &bob, "bob's").await["errors"].is_null(), "another account still writes");
}

#[tokio::test]
async fn create_task_racing_the_cascade_leaves_no_row() {
    let app = spawn_app().await;
    let broker = Broker::for_app(&app).await;
    for round in 1..=5 {
        let user = app.user();
        app.create_task(&user, json!({ "title": "first" })).await;

        // Writers that keep creating tasks from before the event is published
        // until they are refused, so that some are in flight while it is applied.
        let writer = || async {
            for attempt in 0..1_000 {
                let response = create(&app, &user, &format!("attempt {attempt}")).await;
                if response["errors"].is_null() {
                    continue;
                }
                assert_eq!(error_code(&response), "UNAUTHENTICATED", "round {round}: {response}");
                return;
            }
            panic!("round {round}: a deleted account's writes were never refused");
        };
        let publish = async {
            broker.publish(&user_deleted(Uuid::now_v7(), json!({ "userId": user.id }))).await;
            until_processed(&app, round).await;
        };
        tokio::join!(writer(), writer(), writer(), publish);

        assert_nothing_left(&app, &user).await;
    }
}

#[tokio::test]
async fn an_insert_in_flight_when_the_cascade_starts_is_deleted_with_the_rest() {
    let app = spawn_app().await;
    let alice = app.user();
    app.create_task(&alice, json!({ "title": "committed" })).await;
    let broker = Broker::for_app(&app).await;
    // An insert of the test's own, not yet committed when the event comes.
    let mut connection = PgConnection::connect_with(&app.pool().connect_options()).await.unwrap();
    let mut insert = connection.begin().await.unwrap();
    sqlx::query("INSERT INTO tasks.tasks (id, user_id, title) VALUES ($1, $2, 'in flight')")
        .bind(Uuid::now_v7())
        .bind(alice.id)
        .execute(&mut *insert)
        .await
        .unwrap();

    broker.publish(&user_deleted(Uuid::now_v7(), json!({ "userId": alice.id }))).await;
    eventually("the cascade to wait for the insert", || async { waiting_for(&app, "advisory").await == 1 }).await;
    insert.commit().await.unwrap();
    until_processed(&app, 1).await;

    assert_nothing_left(&app, &alice).await;
}

#[tokio::test]
async fn a_create_task_arriving_during_the_cascade_sees_its_tombstone() {
    let app = spawn_app().await;
    let alice = app.user();
    app.create_task(&alice, json!({ "title": "held" })).await;
    let broker = Broker::for_app(&app).await;
    // Hold alice's task, so that the cascade stops at its DELETE, having taken
    // the lock and written the tombstone, uncommitted.
    let mut connection = PgConnection::connect_with(&app.pool().connect_options()).await.unwrap();
    let mut holder = connection.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM tasks.tasks WHERE user_id = $1 FOR UPDATE")
        .bind(alice.id)
        .execute(&mut *holder)
        .await
        .unwrap();
    broker.publish(&user_deleted(Uuid::now_v7(), json!({ "userId": alice.id }))).await;
    eventually("the cascade to wait for the held task", || async { waiting_for(&app, "transactionid").await == 1 })
        .await;

    let (created, ()) = tokio::join!(create(&app, &alice, "during"), async {
        eventually("createTask to wait for the cascade", || async { waiting_for(&app, "advisory").await == 1 }).await;
        holder.commit().await.unwrap();
    });

    assert_eq!(error_code(&created), "UNAUTHENTICATED", "{created}");
    until_processed(&app, 1).await;
    assert_nothing_left(&app, &alice).await;
    let tombstones: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks.deleted_users WHERE user_id = $1")
        .bind(alice.id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(tombstones, 1, "the tombstone stays");
}
