//! The event consumer against the real Postgres and RabbitMQ, each test with its
//! own database, exchange and queues.

use std::sync::Arc;
use std::time::Duration;

use kit::config::{AmqpSettings, Secret};
use kit::events::consumer::{Consumer, Handler, HandlerFuture, Outcome, Subscription};
use kit::events::{Envelope, connect};
use kit::testing::{Isolation, wait_for};
use lapin::BasicProperties;
use lapin::options::{BasicGetOptions, BasicPublishOptions};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Records `data.userId` in `consumer_test.handled`; fails for the nil UUID.
struct Recorder;

impl Handler for Recorder {
    fn handle<'a>(&'a self, tx: &'a mut PgConnection, event: &'a Envelope) -> HandlerFuture<'a> {
        Box::pin(async move {
            let user: Uuid = serde_json::from_value(event.data["userId"].clone())?;
            sqlx::query("INSERT INTO consumer_test.handled (user_id) VALUES ($1)").bind(user).execute(&mut *tx).await?;
            anyhow::ensure!(!user.is_nil(), "cannot handle the nil user");
            Ok(())
        })
    }
}

struct Fixture {
    pool: PgPool,
    exchange: String,
    queue: String,
    /// Drops the database, exchange and queues afterwards.
    _isolation: Isolation,
}

impl Fixture {
    async fn new() -> Self {
        kit::telemetry::init_for_tests();
        let isolation = Isolation::new("consumer");
        let pool = isolation
            .pool(
                "consumer-test",
                &[
                    "CREATE SCHEMA consumer_test",
                    "CREATE TABLE consumer_test.processed_events (event_id uuid PRIMARY KEY, processed_at timestamptz NOT NULL DEFAULT now())",
                    "CREATE TABLE consumer_test.handled (user_id uuid NOT NULL)",
                ],
            )
            .await;
        let (exchange, queue) = (isolation.exchange.clone(), isolation.queue("consumer"));
        Self { pool, exchange, queue, _isolation: isolation }
    }

    fn consumer(&self) -> Consumer {
        let settings = AmqpSettings {
            url: Secret::new(AMQP),
            exchange: self.exchange.clone(),
            poll_interval: Duration::from_millis(100),
            max_backoff: Duration::from_millis(200),
            in_process: None,
        };
        let subscription = Subscription {
            queue: self.queue.clone(),
            routing_key: "user.deleted".into(),
            processed_table: "consumer_test.processed_events",
            prefetch: 4,
            max_attempts: 3,
        };
        Consumer::new(self.pool.clone(), settings, subscription, Arc::new(Recorder), "consumer-test")
    }

    async fn handled(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM consumer_test.handled").fetch_one(&self.pool).await.unwrap()
    }
}

fn event(user: Uuid) -> Vec<u8> {
    let envelope = Envelope {
        event_id: Uuid::now_v7(),
        event_type: "user.deleted".into(),
        version: 1,
        occurred_at: chrono::Utc::now(),
        data: serde_json::json!({ "userId": user }),
    };
    serde_json::to_vec(&envelope).unwrap()
}

#[tokio::test]
async fn an_event_is_handled_once_however_often_it_arrives() {
    let fixture = Fixture::new().await;
    let consumer = fixture.consumer();
    let body = event(Uuid::new_v4());

    let first = consumer.process(&body).await;
    let again = consumer.process(&body).await;

    assert_eq!((first, again), (Outcome::Processed, Outcome::Duplicate));
    assert_eq!(fixture.handled().await, 1);
}

#[tokio::test]
async fn a_failing_handler_leaves_nothing_behind_and_a_malformed_body_is_refused() {
    let fixture = Fixture::new().await;
    let consumer = fixture.consumer();

    assert_eq!(consumer.process(&event(Uuid::nil())).await, Outcome::Failed);
    assert_eq!(consumer.process(b"{ not json").await, Outcome::Malformed);

    assert_eq!(fixture.handled().await, 0, "the failed handler's write was rolled back");
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM consumer_test.processed_events")
        .fetch_one(&fixture.pool)
        .await
        .unwrap();
    assert_eq!(recorded, 0, "a failed event is not marked processed, so it can be retried");
}

#[tokio::test]
async fn through_the_broker_good_events_are_handled_and_bad_ones_dead_lettered() {
    let fixture = Fixture::new().await;
    let cancel = CancellationToken::new();
    tokio::spawn(fixture.consumer().run(cancel.clone()));
    let conn = connect(AMQP, "test-publisher").await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    // Wait for a consumer on the queue (so it is bound too). A failed passive
    // declare closes its channel: probe on a fresh one each time.
    wait_for("the consumer to subscribe", || {
        let conn = &conn;
        let queue = fixture.queue.clone();
        async move {
            let probe = conn.create_channel().await.ok()?;
            let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
            let found = probe.queue_declare(queue.into(), passive, Default::default()).await.ok();
            let _ = probe.close(200, "probe".into()).await;
            found.filter(|q| q.consumer_count() > 0)
        }
    })
    .await;
    let publish = |body: Vec<u8>| {
        let channel = channel.clone();
        let exchange = fixture.exchange.clone();
        async move {
            channel
                .basic_publish(
                    exchange.into(),
                    "user.deleted".into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default(),
                )
                .await
                .unwrap();
        }
    };

    publish(event(Uuid::new_v4())).await;
    publish(b"poison".to_vec()).await;
    publish(event(Uuid::nil())).await;

    wait_for("the good event to be handled", || async { (fixture.handled().await == 1).then_some(()) }).await;
    let dead = format!("{}.dead", fixture.queue);
    let mut dead_bodies = Vec::new();
    while dead_bodies.len() < 2 {
        let message = wait_for("a dead letter", || {
            let channel = channel.clone();
            let dead = dead.clone();
            async move { channel.basic_get(dead.into(), BasicGetOptions { no_ack: true }).await.unwrap() }
        })
        .await;
        dead_bodies.push(message.delivery.data.clone());
    }
    assert!(dead_bodies.contains(&b"poison".to_vec()), "the malformed message is dead-lettered");
    assert!(
        dead_bodies.iter().any(|b| b.starts_with(b"{")),
        "the always-failing event is dead-lettered after its attempts"
    );
    assert_eq!(fixture.handled().await, 1, "the consumer kept running and handled only the good event");
    cancel.cancel();
    let _ = conn.close(200, "bye".into()).await;
}
