//! Deletion is final: once `user.deleted` has been applied, the account's
//! still-valid token stores nothing, and no upload racing the cascade leaves a
//! row (in any table of the schema) or a blob behind.

use futures::channel::mpsc;
use kit::events::{Envelope, USER_DELETED};
use kit::testing::eventually;
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, UPLOAD_FILE, User, amqp_url, error_code, multipart_body, part, spawn_app};
use kit::testing::rows_of_user;

/// Publishes `user.deleted` for `user` once the app's consumer listens.
async fn publish_deletion(app: &TestApp, user: &User) {
    kit::testing::wait_for_consumer(&app.queue).await;
    let envelope = Envelope {
        event_id: Uuid::now_v7(),
        event_type: USER_DELETED.into(),
        version: 1,
        occurred_at: chrono::Utc::now(),
        data: json!({ "userId": user.id }),
        traceparent: None,
    };
    let conn = kit::events::connect(&amqp_url(), "test-publisher").await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .basic_publish(
            app.exchange.clone().into(),
            USER_DELETED.into(),
            BasicPublishOptions::default(),
            &serde_json::to_vec(&envelope).unwrap(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let _ = conn.close(200, "bye".into()).await;
}

/// Waits until `events` events have been applied (their transactions committed).
async fn until_processed(app: &TestApp, events: i64) {
    eventually("the cascade to commit", || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM files.processed_events").fetch_one(&app.pool).await.unwrap();
        n == events
    })
    .await;
}

async fn assert_nothing_left(app: &TestApp, user: &User) {
    let left = rows_of_user(&app.pool, "files", user.id).await;
    assert!(left.is_empty(), "rows of the deleted user are left: {left:?}");
    // Every blob in storage is the deleted user's (the only uploader here).
    eventually("the deleted user's blobs to go", || async { app.blobs().is_empty() }).await;
}

fn assert_account_gone(response: &Value) {
    assert_eq!(error_code(response), "UNAUTHENTICATED", "{response}");
    assert_eq!(response["errors"][0]["message"], "This account no longer exists", "{response}");
}

#[tokio::test]
async fn after_the_cascade_the_old_token_can_store_nothing() {
    let app = spawn_app().await;
    let alice = app.user();
    let file = app.uploaded(&alice, "before.txt", b"before").await;

    publish_deletion(&app, &alice).await;
    until_processed(&app, 1).await;
    eventually("the cascade to delete the blob", || async { app.blobs().is_empty() }).await;
    let one = app.upload(&alice, &[part("after.txt", b"after")]).await;
    let batch = app.upload(&alice, &[part("a.txt", b"a"), part("b.txt", b"b")]).await;
    let renamed = app
        .graphql(
            Some(&alice.token),
            "mutation($id: ID!) { renameFile(id: $id, filename: \"again.txt\") { id } }",
            json!({ "id": file["id"] }),
        )
        .await;

    assert_account_gone(&one);
    assert_account_gone(&batch);
    assert_eq!(error_code(&renamed), "NOT_FOUND", "a rename resurrects nothing: {renamed}");
    assert!(app.blobs().is_empty(), "the refused uploads' blobs were deleted before the answer: {:?}", app.blobs());
    assert_nothing_left(&app, &alice).await;
    let bob = app.user();
    app.uploaded(&bob, "bob.txt", b"bob").await;
}

#[tokio::test]
async fn an_upload_still_streaming_when_the_account_is_deleted_leaves_nothing() {
    let app = spawn_app().await;
    let alice = app.user();
    let (content_type, body) = multipart_body(
        &json!({ "query": UPLOAD_FILE, "variables": { "file": null } }),
        &json!({ "0": ["variables.file"] }),
        &[part("streaming.txt", &vec![b'a'; 256 << 10])],
    );
    let (head, tail) = body.split_at(body.len() - 1024);
    let (sender, chunks) = mpsc::unbounded::<Result<Vec<u8>, std::io::Error>>();
    sender.unbounded_send(Ok(head.to_vec())).unwrap();
    let request = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&alice.token)
        .header("content-type", content_type)
        .body(reqwest::Body::wrap_stream(chunks))
        .send();

    let (response, ()) = tokio::join!(request, async {
        // The service is writing the blob: it has passed every check before it.
        eventually("the blob to be written", || async { !app.blobs().is_empty() }).await;
        publish_deletion(&app, &alice).await;
        until_processed(&app, 1).await;
        sender.unbounded_send(Ok(tail.to_vec())).unwrap();
        sender.close_channel();
    });

    let response: Value = response.unwrap().json().await.unwrap();
    assert_account_gone(&response);
    assert!(app.blobs().is_empty(), "the blob was deleted before the answer: {:?}", app.blobs());
    assert_nothing_left(&app, &alice).await;
}

#[tokio::test]
async fn uploads_racing_the_cascade_leave_nothing() {
    let app = spawn_app().await;
    for round in 1..=3 {
        let user = app.user();
        app.uploaded(&user, "first.txt", b"first").await;

        // Uploaders that keep going from before the event is published until
        // they are refused, so that some are in flight while it is applied.
        let uploader = || async {
            for attempt in 0..1_000 {
                let response = app.upload(&user, &[part(&format!("{attempt}.txt"), b"racing")]).await;
                if response["errors"].is_null() {
                    continue;
                }
                assert_account_gone(&response);
                return;
            }
            panic!("round {round}: a deleted account's uploads were never refused");
        };
        let delete = async {
            publish_deletion(&app, &user).await;
            until_processed(&app, round).await;
        };
        tokio::join!(uploader(), uploader(), uploader(), delete);

        assert_nothing_left(&app, &user).await;
    }
}
