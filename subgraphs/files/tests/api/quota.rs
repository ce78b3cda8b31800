//! The per-user storage quota (`FILES_QUOTA_BYTES`), counted in Postgres.

use kit::testing::{Isolation, eventually};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::{TestApp, User, error_code, part, spawn_app_with};

async fn quota_app(bytes: u64) -> TestApp {
    spawn_app_with(|env| env.set("FILES_QUOTA_BYTES", bytes.to_string())).await
}

async fn used_bytes(app: &TestApp, user: &User) -> Option<i64> {
    sqlx::query_scalar("SELECT used_bytes FROM files.usage WHERE owner_id = $1")
        .bind(user.id)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

fn assert_over_quota(response: &Value) {
    assert_eq!(error_code(response), "PAYLOAD_TOO_LARGE", "{response}");
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("quota of 1000 bytes"), "{message}");
}

#[tokio::test]
async fn an_upload_over_the_quota_is_refused_and_leaves_nothing() {
    let app = quota_app(1000).await;
    let user = app.user();
    app.uploaded(&user, "first.txt", &[b'a'; 600]).await;

    let over = app.post_files(Some(&user.token), &[part("over.txt", &[b'b'; 401])], false).await;
    let batch_over =
        app.post_files(Some(&user.token), &[part("a.txt", &[b'c'; 200]), part("b.txt", &[b'd'; 201])], true).await;

    assert_eq!(over.status(), 413);
    assert_over_quota(&over.json().await.unwrap());
    assert_eq!(batch_over.status(), 413);
    assert_over_quota(&batch_over.json().await.unwrap());
    assert_eq!(app.file_rows().await, 1, "no row for the refused files");
    assert_eq!(app.blobs().len(), 1, "no blob for the refused files: {:?}", app.blobs());
    let exactly_full = app.uploaded(&user, "last.txt", &[b'e'; 400]).await;
    assert_eq!(exactly_full["size"], 400, "the quota itself may be used");
    assert_eq!(used_bytes(&app, &user).await, Some(1000));
    let other = app.user();
    app.uploaded(&other, "theirs.txt", &[b'f'; 1000]).await;
    assert_eq!(used_bytes(&app, &other).await, Some(1000), "each user has a quota of their own");
}

#[tokio::test]
async fn of_two_concurrent_uploads_that_together_pass_the_quota_exactly_one_is_kept() {
    let app = quota_app(1000).await;
    let user = app.user();
    app.uploaded(&user, "first.txt", &[b'a'; 600]).await;
    // Hold the user's usage row (on a connection of the test's own), so that
    // both uploads have read the quota left and stored their blobs, and both
    // wait for the row, when it is let go.
    let mut connection = PgConnection::connect_with(&app.pool.connect_options()).await.unwrap();
    let mut holder = connection.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM files.usage WHERE owner_id = $1 FOR UPDATE")
        .bind(user.id)
        .execute(&mut *holder)
        .await
        .unwrap();

    let (left_part, right_part) = ([part("left.txt", &[b'l'; 300])], [part("right.txt", &[b'r'; 300])]);
    let (left, right, ()) = tokio::join!(app.upload(&user, &left_part), app.upload(&user, &right_part), async {
        eventually("both uploads to wait for the usage row", || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&app.pool)
            .await
            .unwrap();
            waiting == 2
        })
        .await;
        holder.commit().await.unwrap();
    },);

    let kept: Vec<&Value> = [&left, &right].into_iter().filter(|r| r["data"]["uploadFile"].is_object()).collect();
    let refused: Vec<&Value> = [&left, &right].into_iter().filter(|r| r["errors"].is_array()).collect();
    assert_eq!((kept.len(), refused.len()), (1, 1), "{left} {right}");
    assert_over_quota(refused[0]);
    assert_eq!(app.file_rows().await, 2);
    assert_eq!(app.blobs().len(), 2, "the refused upload's blob went before its answer");
    assert_eq!(used_bytes(&app, &user).await, Some(900));
}

async fn delete(app: &TestApp, user: &User, file: &Value) {
    let deleted =
        app.graphql(Some(&user.token), "mutation($id: ID!) { deleteFile(id: $id) }", json!({ "id": file["id"] })).await;
    assert_eq!(deleted["data"]["deleteFile"], true, "{deleted}");
}

#[tokio::test]
async fn deleting_a_file_frees_its_bytes() {
    let app = quota_app(1000).await;
    let user = app.user();
    let big = app.uploaded(&user, "big.txt", &[b'a'; 800]).await;
    let small = app.uploaded(&user, "small.txt", &[b'b'; 100]).await;
    assert_over_quota(&app.upload(&user, &[part("more.txt", &[b'c'; 300])]).await);

    delete(&app, &user, &big).await;
    assert_eq!(used_bytes(&app, &user).await, Some(100));
    let more = app.uploaded(&user, "more.txt", &[b'c'; 300]).await;
    assert_eq!(used_bytes(&app, &user).await, Some(400));

    delete(&app, &user, &small).await;
    delete(&app, &user, &more).await;
    assert_eq!(used_bytes(&app, &user).await, None, "a user without files has no usage row");
}

#[tokio::test]
async fn renaming_keeps_the_count() {
    let app = quota_app(1000).await;
    let user = app.user();
    let file = app.uploaded(&user, "a.txt", &[b'a'; 250]).await;

    let renamed = app
        .graphql(
            Some(&user.token),
            "mutation($id: ID!) { renameFile(id: $id, filename: \"b.txt\") { filename } }",
            json!({ "id": file["id"] }),
        )
        .await;

    assert_eq!(renamed["data"]["renameFile"]["filename"], "b.txt", "{renamed}");
    assert_eq!(used_bytes(&app, &user).await, Some(250));
}

#[tokio::test]
async fn files_stored_before_the_quota_existed_count() {
    let isolation = Isolation::new("files");
    let pool = isolation.pool("files-test", &[]).await;
    let mut before_quota = sqlx::migrate!("../../migrations/files");
    before_quota.create_schema("files");
    before_quota.dangerous_set_table_name("files._sqlx_migrations");
    before_quota.run_to(1, &pool).await.unwrap();
    let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
    for (owner, size) in [(ada, 10_i64), (ada, 32), (bob, 7)] {
        sqlx::query(
            "INSERT INTO files.files (id, owner_id, filename, content_type, size, sha256, storage_key)
             VALUES ($1, $2, 'f.txt', 'text/plain', $3, repeat('0', 64), $4)",
        )
        .bind(Uuid::new_v4())
        .bind(owner)
        .bind(size)
        .bind(Uuid::new_v4().to_string())
        .execute(&pool)
        .await
        .unwrap();
    }

    kit::db::migrate(&pool, sqlx::migrate!("../../migrations/files"), "files").await.unwrap();

    let usage: Vec<(Uuid, i64)> = sqlx::query_as("SELECT owner_id, used_bytes FROM files.usage ORDER BY used_bytes")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut expected = vec![(bob, 7), (ada, 42)];
    expected.sort_by_key(|(_, bytes)| *bytes);
    assert_eq!(usage, expected);
    pool.close().await;
}
