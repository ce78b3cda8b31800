//! `user.deleted` through the real RabbitMQ: tasks gone, once, poison dead-lettered,
//! a database outage outlasted.

use std::net::SocketAddr;

use kit::events::{Envelope, USER_DELETED};
use kit::testing::{TcpGate, metric, queue_depth};
use lapin::options::{BasicGetOptions, BasicPublishOptions};
use lapin::{BasicProperties, Channel, Connection};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, amqp_url, spawn_app, spawn_app_with, titles, wait_for};

pub struct Broker {
    _conn: Connection,
    channel: Channel,
    exchange: String,
}

impl Broker {
    /// Connects once the app's consumer is subscribed (so its queue is bound).
    pub async fn for_app(app: &TestApp) -> Self {
        kit::testing::wait_for_consumer(&app.queue).await;
        let conn = kit::events::connect(&amqp_url(), "test-publisher").await.unwrap();
        let channel = conn.create_channel().await.unwrap();
        Self { _conn: conn, channel, exchange: app.exchange.clone() }
    }

    pub async fn publish(&self, body: &[u8]) {
        self.channel
            .basic_publish(
                self.exchange.clone().into(),
                USER_DELETED.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

pub fn user_deleted(event_id: Uuid, data: Value) -> Vec<u8> {
    let envelope = Envelope {
        event_id,
        event_type: USER_DELETED.into(),
        version: 1,
        occurred_at: chrono::Utc::now(),
        data,
        traceparent: None,
    };
    serde_json::to_vec(&envelope).unwrap()
}

async fn rows_of(app: &TestApp, user: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tasks.tasks WHERE user_id = $1")
        .bind(user)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

async fn wait_until_rows(app: &TestApp, user: Uuid, expected: i64) {
    wait_for("the cascade", || async { (rows_of(app, user).await == expected).then_some(()) }).await;
}

#[tokio::test]
async fn a_deleted_users_tasks_and_cached_pages_are_gone_and_nobody_elses() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user(), app.user());
    for title in ["a1", "a2"] {
        app.create_task(&alice, json!({ "title": title })).await;
    }
    app.create_task(&bob, json!({ "title": "b1" })).await;
    assert_eq!(titles(&app.tasks_page(&alice, json!({})).await), ["a2", "a1"], "now cached");
    let broker = Broker::for_app(&app).await;

    broker.publish(&user_deleted(Uuid::now_v7(), json!({ "userId": alice.id }))).await;

    wait_until_rows(&app, alice.id, 0).await;
    // Alice's token outlives her account by its TTL; it buys her no stale page.
    let page = app.tasks_page(&alice, json!({})).await;
    assert_eq!(page["totalCount"], 0, "the cached page was invalidated: {page}");
    assert_eq!(rows_of(&app, bob.id).await, 1);
}

#[tokio::test]
async fn a_redelivered_event_is_applied_once() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user(), app.user());
    app.create_task(&alice, json!({ "title": "before" })).await;
    app.create_task(&bob, json!({ "title": "bob's" })).await;
    let broker = Broker::for_app(&app).await;
    let event = user_deleted(Uuid::now_v7(), json!({ "userId": alice.id }));

    broker.publish(&event).await;
    wait_until_rows(&app, alice.id, 0).await;
    // Deletion is final, so a second run would find nothing to do: lifting the
    // tombstone gives it a task that it would delete.
    sqlx::query("DELETE FROM tasks.deleted_users WHERE user_id = $1").bind(alice.id).execute(app.pool()).await.unwrap();
    app.create_task(&alice, json!({ "title": "after" })).await;
    broker.publish(&event).await;
    let duplicates = || metric("events_consumed_total", &[("queue", &app.queue), ("outcome", "duplicate")]);
    wait_for("the duplicate to be seen", || async { (duplicates() == 1.0).then_some(()) }).await;

    assert_eq!(rows_of(&app, alice.id).await, 1, "the duplicate did not run again");
    assert_eq!(rows_of(&app, bob.id).await, 1);
    let processed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasks.processed_events").fetch_one(app.pool()).await.unwrap();
    assert_eq!(processed, 1);
}

#[tokio::test]
async fn poison_messages_are_dead_lettered_and_the_consumer_keeps_going() {
    let app = spawn_app().await;
    let alice = app.user();
    app.create_task(&alice, json!({ "title": "doomed" })).await;
    let broker = Broker::for_app(&app).await;

    broker.publish(b"{ not json").await;
    broker.publish(&user_deleted(Uuid::now_v7(), json!({ "userId": "not-a-uuid" }))).await;
    broker.publish(&user_deleted(Uuid::now_v7(), json!({ "userId": alice.id }))).await;

    wait_until_rows(&app, alice.id, 0).await;
    let dead = format!("{}.dead", app.queue);
    let mut dead_letters = Vec::new();
    while dead_letters.len() < 2 {
        let message = wait_for("a dead letter", || {
            let channel = broker.channel.clone();
            let dead = dead.clone();
            async move { channel.basic_get(dead.into(), BasicGetOptions { no_ack: true }).await.unwrap() }
        })
        .await;
        dead_letters.push(message.delivery.data.clone());
    }
    // Deliveries are handled concurrently: either may be dead-lettered first.
    assert!(dead_letters.contains(&b"{ not json".to_vec()), "the malformed body");
    assert!(dead_letters.iter().any(|body| String::from_utf8_lossy(body).contains("not-a-uuid")), "the bad data");
}

#[tokio::test]
async fn the_consumer_reconnects_after_the_broker_goes_away() {
    let gate = TcpGate::start(SocketAddr::from(([127, 0, 0, 1], 5672)), true).await;
    let gated = format!("amqp://guest:guest@127.0.0.1:{}/%2f", gate.port);
    let app = spawn_app_with(|env| env.set("RABBITMQ_URL", gated)).await;
    let alice = app.user();
    app.create_task(&alice, json!({ "title": "outlives the outage" })).await;
    let broker = Broker::for_app(&app).await;

    gate.close();
    kit::testing::wait_for_consumers(&app.queue, |n| n == 0).await;
    // The durable queue keeps the event while the consumer is cut off.
    broker.publish(&user_deleted(Uuid::now_v7(), json!({ "userId": alice.id }))).await;
    gate.open();

    wait_until_rows(&app, alice.id, 0).await;
}

#[tokio::test]
async fn a_deletion_outlasts_a_database_outage_and_nothing_is_dead_lettered() {
    let gate = TcpGate::start(SocketAddr::from(([127, 0, 0, 1], 5432)), true).await;
    let app = spawn_app_with(|env| {
        let direct = env.optional("DATABASE_URL").expect("the test database");
        env.set("DATABASE_URL", direct.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", gate.port)));
        env.set("DATABASE_ACQUIRE_TIMEOUT", "300ms");
        env.set("EVENTS_MAX_BACKOFF", "200ms");
    })
    .await;
    let (alice, bob) = (app.user(), app.user());
    app.create_task(&alice, json!({ "title": "must go" })).await;
    app.create_task(&bob, json!({ "title": "stays" })).await;
    let broker = Broker::for_app(&app).await;
    let dead = format!("{}.dead", app.queue);
    let failed = || metric("events_consumed_total", &[("queue", &app.queue), ("outcome", "failed")]);

    gate.close();
    broker.publish(&user_deleted(Uuid::now_v7(), json!({ "userId": alice.id }))).await;
    // Longer than the delivery limit consumers used to have (5 deliveries), or until it is dead-lettered.
    wait_for("more failed attempts than the old delivery limit", || async {
        (failed() > 5.0 || queue_depth(&dead).await != Some(0)).then_some(())
    })
    .await;
    assert_eq!(queue_depth(&dead).await, Some(0), "dead-lettered during the outage");
    gate.open();

    wait_until_rows(&app, alice.id, 0).await;
    assert_eq!(rows_of(&app, bob.id).await, 1);
    assert_eq!(queue_depth(&dead).await, Some(0));
    assert_eq!(metric("events_dead_lettered_total", &[("queue", &app.queue)]), 0.0);
}
