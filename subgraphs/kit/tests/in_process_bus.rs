//! The in-process event bus and the relay that feeds it, against the real
//! Postgres, each test with its own database. No broker is involved.

use std::sync::Arc;
use std::time::Duration;

use kit::config::{AmqpSettings, Secret};
use kit::events::consumer::{Consumer, Handler, HandlerFuture, Subscription};
use kit::events::in_process::Delivery;
use kit::events::{Envelope, InProcessBus, Outbox, Relay};
use kit::testing::Isolation;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const OUTBOX: Outbox = Outbox::new("bus_test");

/// Records `data.userId` in `bus_test.handled` under its queue; fails for the nil UUID.
struct Recorder {
    queue: &'static str,
}

impl Handler for Recorder {
    fn handle<'a>(&'a self, tx: &'a mut PgConnection, event: &'a Envelope) -> HandlerFuture<'a> {
        Box::pin(async move {
            let user: Uuid = serde_json::from_value(event.data["userId"].clone())?;
            anyhow::ensure!(!user.is_nil(), "cannot handle the nil user");
            sqlx::query("INSERT INTO bus_test.handled (queue, user_id) VALUES ($1, $2)")
                .bind(self.queue)
                .bind(user)
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }
}

struct Fixture {
    pool: PgPool,
    bus: InProcessBus,
    /// Drops the database afterwards.
    _isolation: Isolation,
}

impl Fixture {
    async fn new() -> Self {
        kit::telemetry::init_for_tests();
        let isolation = Isolation::new("bus");
        let pool = isolation
            .pool(
                "bus-test",
                &[
            "CREATE SCHEMA bus_test",
            "CREATE TABLE bus_test.processed_tasks (event_id uuid PRIMARY KEY, processed_at timestamptz NOT NULL DEFAULT now())",
            "CREATE TABLE bus_test.processed_files (event_id uuid PRIMARY KEY, processed_at timestamptz NOT NULL DEFAULT now())",
            "CREATE TABLE bus_test.handled (queue text NOT NULL, user_id uuid NOT NULL)",
            "CREATE TABLE bus_test.outbox (id bigserial PRIMARY KEY, event_id uuid NOT NULL UNIQUE, event_type text NOT NULL,
                routing_key text NOT NULL, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
                published_at timestamptz)",
        ],
            )
            .await;
        Self { pool, bus: InProcessBus::new(), _isolation: isolation }
    }

    fn settings(&self) -> AmqpSettings {
        AmqpSettings {
            // Never dialled: the bus replaces the broker.
            url: Secret::new("amqp://guest:guest@127.0.0.1:1/%2f"),
            exchange: "unused".into(),
            poll_interval: Duration::from_millis(100),
            max_backoff: Duration::from_millis(200),
            in_process: Some(self.bus.clone()),
        }
    }

    /// A consumer subscribed to the bus as `queue`, recording in `processed_<queue>`.
    fn consumer(&self, queue: &'static str, routing_key: &str) -> Consumer {
        let processed_table = match queue {
            "tasks" => "bus_test.processed_tasks",
            _ => "bus_test.processed_files",
        };
        let subscription = Subscription {
            queue: queue.into(),
            routing_key: routing_key.into(),
            processed_table,
            prefetch: 4,
            max_attempts: 3,
        };
        Consumer::new(self.pool.clone(), self.settings(), subscription, Arc::new(Recorder { queue }), "bus-test")
    }

    async fn handled(&self, queue: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM bus_test.handled WHERE queue = $1")
            .bind(queue)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Commits one `user.deleted` event to the outbox, as a service would.
    async fn enqueue(&self, user: Uuid) -> Envelope {
        let mut tx = self.pool.begin().await.unwrap();
        let envelope = OUTBOX.enqueue(&mut tx, "user.deleted", &serde_json::json!({ "userId": user })).await.unwrap();
        tx.commit().await.unwrap();
        envelope
    }

    async fn pending(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM bus_test.outbox WHERE published_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

fn body(event_id: Uuid, user: Uuid) -> Vec<u8> {
    let envelope = Envelope {
        event_id,
        event_type: "user.deleted".into(),
        version: 1,
        occurred_at: chrono::Utc::now(),
        data: serde_json::json!({ "userId": user }),
    };
    serde_json::to_vec(&envelope).unwrap()
}

#[tokio::test]
async fn every_bound_subscriber_handles_an_event_once_however_often_it_is_delivered() {
    let fixture = Fixture::new().await;
    let _tasks = fixture.consumer("tasks", "user.deleted");
    let _files = fixture.consumer("files", "user.*");
    let event_id = Uuid::now_v7();

    let first = fixture.bus.deliver(event_id, "user.deleted", &body(event_id, Uuid::new_v4())).await;
    let again = fixture.bus.deliver(event_id, "user.deleted", &body(event_id, Uuid::new_v4())).await;
    let unbound = fixture.bus.deliver(Uuid::now_v7(), "task.created", b"{}").await;

    assert_eq!((first, again, unbound), (Delivery::Settled, Delivery::Settled, Delivery::Settled));
    assert_eq!((fixture.handled("tasks").await, fixture.handled("files").await), (1, 1));
}

#[tokio::test]
async fn a_failing_event_is_retried_with_backoff_then_dead_lettered() {
    let fixture = Fixture::new().await;
    let _tasks = fixture.consumer("tasks", "user.deleted");
    let event_id = Uuid::now_v7();
    let poison = body(event_id, Uuid::nil());

    let mut deliveries = 0;
    let outcome = loop {
        deliveries += 1;
        match fixture.bus.deliver(event_id, "user.deleted", &poison).await {
            // Honour the bus's own schedule, as the relay does.
            Delivery::RetryAt(at) => tokio::time::sleep_until(at.into()).await,
            settled => break settled,
        }
        assert!(deliveries < 10, "never dead-lettered");
    };

    assert_eq!(outcome, Delivery::Settled);
    assert_eq!(deliveries, 3, "max_attempts deliveries, then dead-lettered");
    assert_eq!(fixture.bus.deliver(Uuid::now_v7(), "user.deleted", b"not json").await, Delivery::Settled);
    assert_eq!(fixture.handled("tasks").await, 0);
}

#[tokio::test]
async fn a_retry_is_not_due_before_its_backoff() {
    let fixture = Fixture::new().await;
    let _tasks = fixture.consumer("tasks", "user.deleted");
    let event_id = Uuid::now_v7();
    let poison = body(event_id, Uuid::nil());

    let Delivery::RetryAt(due) = fixture.bus.deliver(event_id, "user.deleted", &poison).await else {
        panic!("a failure is retried");
    };
    let early = fixture.bus.deliver(event_id, "user.deleted", &poison).await;

    assert_eq!(early, Delivery::RetryAt(due), "not delivered again before it is due");
}

#[tokio::test]
async fn a_stopped_consumer_leaves_its_events_pending() {
    let fixture = Fixture::new().await;
    let tasks = fixture.consumer("tasks", "user.deleted");
    let stop = CancellationToken::new();
    stop.cancel();
    tasks.run(stop).await;
    let event_id = Uuid::now_v7();

    let outcome = fixture.bus.deliver(event_id, "user.deleted", &body(event_id, Uuid::new_v4())).await;

    assert!(matches!(outcome, Delivery::RetryAt(_)), "{outcome:?}");
    assert_eq!(fixture.handled("tasks").await, 0);
}

#[tokio::test]
async fn the_relay_marks_a_row_published_only_once_every_subscriber_has_committed_it() {
    let fixture = Fixture::new().await;
    let _tasks = fixture.consumer("tasks", "user.deleted");
    let _files = fixture.consumer("files", "user.deleted");
    let relay = Relay::new(fixture.pool.clone(), OUTBOX, fixture.settings(), "bus-test");
    fixture.enqueue(Uuid::new_v4()).await;
    fixture.enqueue(Uuid::nil()).await;

    let pass = relay.deliver_pending(&fixture.bus).await.unwrap();

    assert_eq!(pass.settled, 1, "the good event is settled");
    assert!(pass.retry_at.is_some(), "the failing one is due again");
    assert_eq!(fixture.pending().await, 1, "the failing event stays in the outbox");
    assert_eq!((fixture.handled("tasks").await, fixture.handled("files").await), (1, 1));
}

#[tokio::test]
async fn the_running_relay_delivers_on_commit() {
    let fixture = Fixture::new().await;
    let _tasks = fixture.consumer("tasks", "user.deleted");
    let relay = Relay::new(fixture.pool.clone(), OUTBOX, fixture.settings(), "bus-test");
    let cancel = CancellationToken::new();
    let running = tokio::spawn(relay.run(cancel.clone()));

    fixture.enqueue(Uuid::new_v4()).await;

    kit::testing::eventually("the event to be handled and marked", || async {
        fixture.handled("tasks").await == 1 && fixture.pending().await == 0
    })
    .await;
    cancel.cancel();
    running.await.unwrap();
}

#[tokio::test]
async fn a_dropped_consumer_takes_no_more_events() {
    let fixture = Fixture::new().await;
    drop(fixture.consumer("tasks", "user.deleted"));
    let event_id = Uuid::now_v7();

    let outcome = fixture.bus.deliver(event_id, "user.deleted", &body(event_id, Uuid::new_v4())).await;

    assert!(matches!(outcome, Delivery::RetryAt(_)), "{outcome:?}");
    assert_eq!(fixture.handled("tasks").await, 0);
}
