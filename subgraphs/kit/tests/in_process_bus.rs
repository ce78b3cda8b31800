//! The in-process event bus and the relay that feeds it, against the real
//! Postgres, each test with its own database. No broker is involved.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kit::config::{AmqpSettings, Secret};
use kit::events::consumer::{Consumer, ConsumerSettings, Handler, HandlerFuture, Poison, Subscription};
use kit::events::in_process::Delivery;
use kit::events::{Envelope, InProcessBus, Outbox, Relay, Retention};
use kit::testing::{Isolation, metric};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const OUTBOX: Outbox = Outbox::new("bus_test");

/// Records `data.userId` in `bus_test.handled` under its queue; fails
/// transiently while `unavailable` is set; refuses the nil UUID as poison.
struct Recorder {
    queue: &'static str,
    unavailable: Arc<AtomicBool>,
}

impl Handler for Recorder {
    fn handle<'a>(&'a self, tx: &'a mut PgConnection, event: &'a Envelope) -> HandlerFuture<'a> {
        Box::pin(async move {
            let user: Uuid = serde_json::from_value(event.data["userId"].clone())?;
            anyhow::ensure!(!self.unavailable.load(Ordering::SeqCst), "the database is away");
            if user.is_nil() {
                return Err(Poison("the nil user".into()).into());
            }
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
    /// Whether the `tasks` subscriber's database is away.
    tasks_unavailable: Arc<AtomicBool>,
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
        kit::metrics::handle();
        Self { pool, bus: InProcessBus::new(), tasks_unavailable: Arc::default(), _isolation: isolation }
    }

    fn settings(&self) -> AmqpSettings {
        AmqpSettings {
            // Never dialled: the bus replaces the broker.
            url: Secret::new("amqp://guest:guest@127.0.0.1:1/%2f"),
            exchange: "unused".into(),
            poll_interval: Duration::from_millis(100),
            max_backoff: Duration::from_millis(200),
        }
    }

    /// A consumer subscribed to the bus as `queue`, recording in `processed_<queue>`.
    fn consumer(&self, queue: &'static str, routing_key: &str) -> Consumer {
        let processed_table = match queue {
            "tasks" => "bus_test.processed_tasks",
            _ => "bus_test.processed_files",
        };
        let subscription = Subscription {
            routing_key: routing_key.into(),
            processed_table,
            settings: ConsumerSettings {
                // Unique per test: the metrics registry is the process's.
                queue: format!("{queue}.{}", self._isolation.exchange),
                prefetch: 4,
                max_backoff: Duration::from_millis(50),
                processed_retention: Retention { keep: Duration::from_secs(3600), every: Duration::from_secs(3600) },
                dead_letter_probe_interval: Duration::from_secs(15),
            },
        };
        let unavailable = if queue == "tasks" { self.tasks_unavailable.clone() } else { Arc::default() };
        let handler = Arc::new(Recorder { queue, unavailable });
        Consumer::new(self.pool.clone(), self.settings(), subscription, handler, "bus-test").with_bus(Some(&self.bus))
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
        traceparent: None,
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
async fn a_failing_event_is_retried_for_as_long_as_it_fails_and_poison_dead_lettered_at_once() {
    let fixture = Fixture::new().await;
    let _tasks = fixture.consumer("tasks", "user.deleted");
    fixture.tasks_unavailable.store(true, Ordering::SeqCst);
    let event_id = Uuid::now_v7();
    let event = body(event_id, Uuid::new_v4());

    // Far more attempts than the five after which this bus used to give up.
    for _ in 0..12 {
        let Delivery::RetryAt(at) = fixture.bus.deliver(event_id, "user.deleted", &event).await else {
            panic!("a transient failure is never given up on");
        };
        // Honour the bus's own schedule, as the relay does.
        tokio::time::sleep_until(at.into()).await;
    }
    fixture.tasks_unavailable.store(false, Ordering::SeqCst);

    assert_eq!(fixture.bus.deliver(event_id, "user.deleted", &event).await, Delivery::Settled);
    assert_eq!(fixture.handled("tasks").await, 1);
    let poison_id = Uuid::now_v7();
    assert_eq!(fixture.bus.deliver(poison_id, "user.deleted", &body(poison_id, Uuid::nil())).await, Delivery::Settled);
    assert_eq!(fixture.bus.deliver(Uuid::now_v7(), "user.deleted", b"not json").await, Delivery::Settled);
    let queue = &fixture.bus.queues()[0];
    assert_eq!(metric("events_dead_lettered_total", &[("queue", queue)]), 2.0, "two dead letters, nothing else");
    assert_eq!(fixture.handled("tasks").await, 1);
}

#[tokio::test]
async fn a_retry_is_not_due_before_its_backoff() {
    let fixture = Fixture::new().await;
    let _tasks = fixture.consumer("tasks", "user.deleted");
    fixture.tasks_unavailable.store(true, Ordering::SeqCst);
    let event_id = Uuid::now_v7();
    let event = body(event_id, Uuid::new_v4());

    let Delivery::RetryAt(due) = fixture.bus.deliver(event_id, "user.deleted", &event).await else {
        panic!("a failure is retried");
    };
    let early = fixture.bus.deliver(event_id, "user.deleted", &event).await;

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
    let relay = Relay::new(fixture.pool.clone(), OUTBOX, fixture.settings(), "bus-test").with_bus(Some(&fixture.bus));
    fixture.enqueue(Uuid::new_v4()).await;
    fixture.tasks_unavailable.store(true, Ordering::SeqCst);
    let pass = relay.deliver_pending(&fixture.bus).await.unwrap();

    assert_eq!(pass.settled, 0, "tasks has not committed it");
    assert!(pass.retry_at.is_some(), "it is due again");
    assert_eq!(fixture.pending().await, 1);
    assert_eq!((fixture.handled("tasks").await, fixture.handled("files").await), (0, 1));

    fixture.tasks_unavailable.store(false, Ordering::SeqCst);
    tokio::time::sleep_until(pass.retry_at.unwrap().into()).await;
    let pass = relay.deliver_pending(&fixture.bus).await.unwrap();

    assert_eq!(pass.settled, 1);
    assert_eq!(fixture.pending().await, 0);
    assert_eq!((fixture.handled("tasks").await, fixture.handled("files").await), (1, 1), "files did not run it twice");
}

#[tokio::test]
async fn rows_owed_to_one_subscriber_hold_back_no_later_row() {
    let fixture = Fixture::new().await;
    let _tasks = fixture.consumer("tasks", "user.deleted");
    let _files = fixture.consumer("files", "user.deleted");
    let relay = Relay::new(fixture.pool.clone(), OUTBOX, fixture.settings(), "bus-test").with_bus(Some(&fixture.bus));
    fixture.tasks_unavailable.store(true, Ordering::SeqCst);
    // More than a page of rows that tasks cannot take yet, then one more.
    for _ in 0..101 {
        fixture.enqueue(Uuid::new_v4()).await;
    }

    let pass = relay.deliver_pending(&fixture.bus).await.unwrap();

    assert_eq!(fixture.handled("files").await, 101, "files got every row, the last one too");
    assert_eq!((pass.settled, fixture.pending().await), (0, 101), "tasks still owes them all");
}

#[tokio::test]
async fn the_running_relay_delivers_on_commit() {
    let fixture = Fixture::new().await;
    let _tasks = fixture.consumer("tasks", "user.deleted");
    let relay = Relay::new(fixture.pool.clone(), OUTBOX, fixture.settings(), "bus-test").with_bus(Some(&fixture.bus));
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
