//! Pruning the bookkeeping tables: published outbox rows and `processed_events`,
//! against the real Postgres (no broker: the in-process bus stands in).

use std::sync::Arc;
use std::time::Duration;

use kit::config::{AmqpSettings, Secret};
use kit::events::consumer::{Consumer, ConsumerSettings, Handler, HandlerFuture, Subscription};
use kit::events::{Envelope, InProcessBus, Outbox, Relay, Retention};
use kit::testing::{Isolation, eventually};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const OUTBOX: Outbox = Outbox::new("retention_test");
const DAY: Duration = Duration::from_secs(24 * 3600);

struct Nothing;

impl Handler for Nothing {
    fn handle<'a>(&'a self, _tx: &'a mut PgConnection, _event: &'a Envelope) -> HandlerFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

async fn database(isolation: &Isolation) -> PgPool {
    kit::telemetry::init_for_tests();
    isolation
        .pool(
            "retention-test",
            &[
                "CREATE SCHEMA retention_test",
                "CREATE TABLE retention_test.processed_events (event_id uuid PRIMARY KEY, processed_at timestamptz NOT NULL DEFAULT now())",
                "CREATE TABLE retention_test.outbox (id bigserial PRIMARY KEY, event_id uuid NOT NULL UNIQUE, event_type text NOT NULL,
                    routing_key text NOT NULL, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
                    published_at timestamptz)",
            ],
        )
        .await
}

/// Settings never dialled: the relay and consumers of these tests are on an in-process bus.
fn unused_broker() -> AmqpSettings {
    AmqpSettings {
        url: Secret::new("amqp://guest:guest@127.0.0.1:1/%2f"),
        exchange: "unused".into(),
        poll_interval: Duration::from_millis(100),
        max_backoff: Duration::from_millis(200),
    }
}

/// An outbox row created `age_days` ago, published then (or never).
async fn outbox_row(pool: &PgPool, age_days: i32, published: bool) -> Uuid {
    let event_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO retention_test.outbox (event_id, event_type, routing_key, payload, created_at, published_at)
         VALUES ($1, 'test.kept', 'test.kept', '{}', now() - make_interval(days => $2),
                 CASE WHEN $3 THEN now() - make_interval(days => $2) END)",
    )
    .bind(event_id)
    .bind(age_days)
    .bind(published)
    .execute(pool)
    .await
    .unwrap();
    event_id
}

async fn processed_row(pool: &PgPool, age_days: i32) -> Uuid {
    let event_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO retention_test.processed_events (event_id, processed_at) VALUES ($1, now() - make_interval(days => $2))",
    )
    .bind(event_id)
    .bind(age_days)
    .execute(pool)
    .await
    .unwrap();
    event_id
}

async fn ids(pool: &PgPool, table: &str) -> Vec<Uuid> {
    let sql = format!("SELECT event_id FROM retention_test.{table} ORDER BY event_id");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.unwrap()
}

#[tokio::test]
async fn the_outbox_keeps_pending_and_recent_rows_and_the_relay_prunes_the_rest_on_a_timer() {
    let isolation = Isolation::new("retention");
    let pool = database(&isolation).await;
    let old_pending = outbox_row(&pool, 30, false).await;
    let recent = outbox_row(&pool, 6, true).await;
    outbox_row(&pool, 8, true).await;
    let every = Duration::from_millis(50);
    let relay =
        Relay::new(pool.clone(), OUTBOX, unused_broker(), "retention-test").with_bus(Some(&InProcessBus::new()));

    let pruned = relay.with_retention(Retention { keep: 7 * DAY, every }).prune().await.unwrap();

    assert_eq!(pruned, 1);
    assert_eq!(ids(&pool, "outbox").await, [old_pending, recent], "pending rows are never pruned");

    let relay =
        Relay::new(pool.clone(), OUTBOX, unused_broker(), "retention-test").with_bus(Some(&InProcessBus::new()));
    let cancel = CancellationToken::new();
    let running = tokio::spawn(relay.with_retention(Retention { keep: 7 * DAY, every }).run(cancel.clone()));
    outbox_row(&pool, 9, true).await;
    eventually("the running relay to prune", || async { ids(&pool, "outbox").await.len() == 2 }).await;
    cancel.cancel();
    running.await.unwrap();
}

#[tokio::test]
async fn processed_events_are_kept_for_the_retention_and_pruned_by_the_consumer_on_a_timer() {
    let isolation = Isolation::new("retention");
    let pool = database(&isolation).await;
    let recent = processed_row(&pool, 29).await;
    processed_row(&pool, 31).await;
    let consumer = |every| {
        let settings = ConsumerSettings {
            queue: "retention-test".into(),
            prefetch: 1,
            max_backoff: Duration::from_millis(50),
            processed_retention: Retention { keep: 30 * DAY, every },
            dead_letter_probe_interval: Duration::from_secs(15),
        };
        let subscription = Subscription {
            routing_key: "test.kept".into(),
            processed_table: "retention_test.processed_events",
            settings,
        };
        Consumer::new(pool.clone(), unused_broker(), subscription, Arc::new(Nothing), "retention-test")
            .with_bus(Some(&InProcessBus::new()))
    };

    let pruned = consumer(Duration::from_secs(3600)).prune_processed().await.unwrap();

    assert_eq!(pruned, 1);
    assert_eq!(ids(&pool, "processed_events").await, [recent]);

    let cancel = CancellationToken::new();
    let running = tokio::spawn(consumer(Duration::from_millis(50)).run(cancel.clone()));
    processed_row(&pool, 40).await;
    eventually("the running consumer to prune", || async { ids(&pool, "processed_events").await == [recent] }).await;
    cancel.cancel();
    running.await.unwrap();
}
