use std::net::SocketAddr;
use std::time::Duration;

use files::cascade;
use kit::Env;
use kit::config::{AmqpSettings, Secret};
use kit::events::Envelope;
use kit::events::consumer::{Consumer, ConsumerSettings, Outcome};
use kit::testing::{TcpGate, eventually, metric, queue_depth, wait_for, wait_for_consumer};
use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use uuid::Uuid;

use crate::helpers::{TestApp, amqp_url, spawn_app, spawn_app_with};

fn user_deleted(user: Uuid) -> Vec<u8> {
    let envelope = Envelope {
        event_id: Uuid::now_v7(),
        event_type: "user.deleted".into(),
        version: 1,
        occurred_at: chrono::Utc::now(),
        data: serde_json::json!({ "userId": user }),
        traceparent: None,
    };
    serde_json::to_vec(&envelope).unwrap()
}

/// A consumer of the app's queue, for calling `process` directly.
fn consumer_of(app: &TestApp) -> Consumer {
    let settings = AmqpSettings {
        url: Secret::new(amqp_url()),
        exchange: app.exchange.clone(),
        poll_interval: Duration::from_millis(100),
        max_backoff: Duration::from_millis(200),
    };
    let consumer = ConsumerSettings::from_env(&mut Env::from_pairs::<String, String>([]), app.queue.clone(), 8);
    cascade::consumer(settings, &consumer, app.repository.clone())
}

async fn publish(app: &TestApp, body: &[u8]) {
    let conn = kit::events::connect(&amqp_url(), "test-publisher").await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let properties = BasicProperties::default().with_delivery_mode(2);
    let exchange = app.exchange.clone().into();
    let confirm =
        channel.basic_publish(exchange, "user.deleted".into(), BasicPublishOptions::default(), body, properties);
    confirm.await.unwrap();
    let _ = conn.close(200, "bye".into()).await;
}

async fn dead_letters(app: &TestApp) -> u32 {
    queue_depth(&format!("{}.dead", app.queue)).await.expect("the dead-letter queue exists")
}

async fn owned_rows(app: &TestApp, user: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM files.files WHERE owner_id = $1")
        .bind(user)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_published_user_deleted_removes_the_users_files_and_blobs() {
    let app = spawn_app().await;
    let (gone, stays) = (app.user(), app.user());
    app.uploaded(&gone, "a.txt", b"a").await;
    app.uploaded(&gone, "b.txt", b"b").await;
    app.uploaded(&stays, "c.txt", b"c").await;
    let conn = kit::events::connect(&amqp_url(), "test-publisher").await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    wait_for("the consumer to subscribe", || {
        let (conn, queue) = (&conn, app.queue.clone());
        async move {
            let probe = conn.create_channel().await.ok()?;
            let passive = QueueDeclareOptions { passive: true, ..Default::default() };
            let found = probe.queue_declare(queue.into(), passive, Default::default()).await.ok();
            let _ = probe.close(200, "probe".into()).await;
            found.filter(|q| q.consumer_count() > 0)
        }
    })
    .await;

    channel
        .basic_publish(
            app.exchange.clone().into(),
            "user.deleted".into(),
            BasicPublishOptions::default(),
            &user_deleted(gone.id),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap();

    eventually("the user's files to go", || async { owned_rows(&app, gone.id).await == 0 }).await;
    eventually("their blobs to go", || async { app.blobs().len() == 1 }).await;
    // The blob goes first, then its queue entry.
    eventually("the deletion queue to drain", || async { app.repository.pending_blob_deletions().await.unwrap() == 0 })
        .await;
    assert_eq!(owned_rows(&app, stays.id).await, 1, "another user's files stay");
    let usage: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT owner_id, used_bytes FROM files.usage").fetch_all(&app.pool).await.unwrap();
    assert_eq!(usage, [(stays.id, 1)], "the deleted user's bytes are freed, the other's still count");
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn a_redelivered_event_is_a_duplicate_and_a_failed_blob_deletion_is_retried() {
    let app = spawn_app().await;
    let user = app.user();
    app.uploaded(&user, "a.txt", b"a").await;
    let blob = app.storage_dir.join(&app.blobs()[0]);
    // A blob that cannot be deleted yet: a non-empty directory in its place.
    std::fs::remove_file(&blob).unwrap();
    std::fs::create_dir_all(blob.join("stuck")).unwrap();
    let consumer = consumer_of(&app);
    let event = user_deleted(user.id);

    let first = consumer.process(&event).await;
    let again = consumer.process(&event).await;

    assert_eq!((first, again), (Outcome::Processed, Outcome::Duplicate));
    assert_eq!(owned_rows(&app, user.id).await, 0);
    assert_eq!(app.repository.pending_blob_deletions().await.unwrap(), 1, "the failed deletion is remembered");

    std::fs::remove_dir_all(&blob).unwrap();
    std::fs::write(&blob, b"a").unwrap();
    let retried = app.repository.retry_blob_deletions(100).await.unwrap();

    assert_eq!(retried, 1);
    assert!(!blob.exists());
    assert_eq!(app.repository.pending_blob_deletions().await.unwrap(), 0);
}

#[tokio::test]
async fn a_malformed_event_is_refused() {
    let app = spawn_app().await;
    let consumer = consumer_of(&app);
    let no_user = serde_json::to_vec(&Envelope {
        event_id: Uuid::now_v7(),
        event_type: "user.deleted".into(),
        version: 1,
        occurred_at: chrono::Utc::now(),
        data: serde_json::json!({}),
        traceparent: None,
    })
    .unwrap();

    assert_eq!(consumer.process(b"not json").await, Outcome::Malformed);
    assert_eq!(consumer.process(&no_user).await, Outcome::Malformed, "data that can never be handled: poison");
}

#[tokio::test]
async fn a_deletion_outlasts_a_database_outage_and_nothing_is_dead_lettered() {
    let gate = TcpGate::start(SocketAddr::from(([127, 0, 0, 1], 5432)), true).await;
    let app = spawn_app_with(|env| {
        let direct = env.optional("DATABASE_URL").expect("the test database");
        env.set("DATABASE_URL", direct.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", gate.port)));
        env.set("DATABASE_ACQUIRE_TIMEOUT", "300ms");
        env.set("EVENTS_MAX_BACKOFF", "200ms");
        env.set("EVENTS_PREFETCH", "2");
    })
    .await;
    let user = app.user();
    app.uploaded(&user, "a.txt", b"a").await;
    wait_for_consumer(&app.queue).await;
    let failed = || metric("events_consumed_total", &[("queue", &app.queue), ("outcome", "failed")]);

    gate.close();
    publish(&app, &user_deleted(user.id)).await;
    // Longer than the five deliveries after which this consumer used to give up.
    wait_for("more failed attempts than the old delivery limit", || async {
        (failed() > 5.0 || dead_letters(&app).await != 0).then_some(())
    })
    .await;
    assert_eq!(dead_letters(&app).await, 0, "dead-lettered during the outage");
    gate.open();

    eventually("the user's files to go", || async { owned_rows(&app, user.id).await == 0 }).await;
    eventually("their blob to go", || async { app.blobs().is_empty() }).await;
    assert_eq!(dead_letters(&app).await, 0);
    assert_eq!(metric("events_dead_lettered_total", &[("queue", &app.queue)]), 0.0);
}

#[tokio::test]
async fn a_deletion_during_a_storage_outage_completes_and_the_blobs_go_once_it_is_back() {
    let app = spawn_app_with(|env| env.set("ORPHAN_SWEEP_INTERVAL", "1s")).await;
    let user = app.user();
    app.uploaded(&user, "a.txt", b"a").await;
    app.uploaded(&user, "b.txt", b"b").await;
    wait_for_consumer(&app.queue).await;
    // The store's directory gone, a file in its place: every blob operation fails.
    let away = app.storage_dir.with_extension("away");
    std::fs::rename(&app.storage_dir, &away).unwrap();
    std::fs::write(&app.storage_dir, b"not a directory").unwrap();

    publish(&app, &user_deleted(user.id)).await;

    eventually("the user's rows to go", || async { owned_rows(&app, user.id).await == 0 }).await;
    assert_eq!(app.repository.pending_blob_deletions().await.unwrap(), 2, "the blobs wait in the queue");
    assert_eq!(dead_letters(&app).await, 0, "the event was handled, not dead-lettered");
    std::fs::remove_file(&app.storage_dir).unwrap();
    std::fs::rename(&away, &app.storage_dir).unwrap();

    eventually("the blobs to go", || async { app.blobs().is_empty() }).await;
    eventually("the queue to drain", || async { app.repository.pending_blob_deletions().await.unwrap() == 0 }).await;
}
