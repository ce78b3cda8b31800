//! The event consumer against the real Postgres and RabbitMQ, each test with its
//! own database, exchange and queues.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kit::config::{AmqpSettings, Secret};
use kit::events::consumer::{Consumer, ConsumerSettings, Handler, HandlerFuture, Outcome, Poison, Subscription};
use kit::events::{Envelope, Retention, connect};
use kit::testing::{
    Isolation, TcpGate, amqp_url, eventually, metric, queue_depth, wait_for_consumer, wait_for_consumers,
};
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What the handler does for each user, as the test scripts it.
#[derive(Default)]
struct Script {
    /// Refused as [`Poison`].
    poisoned: HashSet<Uuid>,
    /// Failing, as if the handler's database were away.
    unavailable: HashSet<Uuid>,
    /// Not answering (as a dependency that hangs) until removed.
    hanging: HashSet<Uuid>,
    /// Making the handler panic.
    panicking: HashSet<Uuid>,
    /// Handler calls per user.
    attempts: HashMap<Uuid, u32>,
}

/// Records `data.userId` in `consumer_test.handled`, unless the script says otherwise.
struct Recorder {
    script: Arc<Mutex<Script>>,
}

impl Handler for Recorder {
    fn handle<'a>(&'a self, tx: &'a mut PgConnection, event: &'a Envelope) -> HandlerFuture<'a> {
        Box::pin(async move {
            let user: Uuid = serde_json::from_value(event.data["userId"].clone())?;
            let panics = {
                let mut script = self.script.lock().unwrap();
                *script.attempts.entry(user).or_default() += 1;
                if script.poisoned.contains(&user) {
                    return Err(Poison(format!("user {user} is poison")).into());
                }
                anyhow::ensure!(!script.unavailable.contains(&user), "the dependency is away");
                script.panicking.contains(&user)
            };
            assert!(!panics, "a bug in the handler");
            while self.script.lock().unwrap().hanging.contains(&user) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            sqlx::query("INSERT INTO consumer_test.handled (user_id) VALUES ($1)").bind(user).execute(&mut *tx).await?;
            Ok(())
        })
    }
}

struct Fixture {
    pool: PgPool,
    exchange: String,
    queue: String,
    script: Arc<Mutex<Script>>,
    /// Drops the database, exchange and queues afterwards.
    _isolation: Isolation,
}

impl Fixture {
    async fn new() -> Self {
        kit::telemetry::init_for_tests();
        kit::metrics::handle();
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
        Self { pool, exchange, queue, script: Arc::default(), _isolation: isolation }
    }

    fn consumer(&self) -> Consumer {
        self.consumer_via(&amqp_url())
    }

    fn consumer_via(&self, url: &str) -> Consumer {
        let handler = Arc::new(Recorder { script: self.script.clone() });
        Consumer::new(self.pool.clone(), self.amqp(url), self.subscription(), handler, "consumer-test")
    }

    fn amqp(&self, url: &str) -> AmqpSettings {
        AmqpSettings {
            url: Secret::new(url),
            exchange: self.exchange.clone(),
            poll_interval: Duration::from_millis(100),
            max_backoff: Duration::from_millis(200),
        }
    }

    fn subscription(&self) -> Subscription {
        Subscription {
            routing_key: "user.deleted".into(),
            processed_table: "consumer_test.processed_events",
            settings: ConsumerSettings {
                queue: self.queue.clone(),
                prefetch: 4,
                max_backoff: Duration::from_millis(50),
                processed_retention: Retention { keep: Duration::from_secs(3600), every: Duration::from_secs(3600) },
                dead_letter_probe_interval: Duration::from_millis(50),
            },
        }
    }

    /// Runs a consumer until the returned token is cancelled, once it is subscribed.
    async fn run(&self, consumer: Consumer) -> CancellationToken {
        let cancel = CancellationToken::new();
        tokio::spawn(consumer.run(cancel.clone()));
        wait_for_consumer(&self.queue).await;
        cancel
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }

    fn attempts(&self, user: Uuid) -> u32 {
        self.script().attempts.get(&user).copied().unwrap_or(0)
    }

    async fn handled(&self, user: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM consumer_test.handled WHERE user_id = $1")
            .bind(user)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn dead_letters(&self) -> u32 {
        queue_depth(&format!("{}.dead", self.queue)).await.expect("the dead-letter queue exists")
    }

    fn counted(&self, name: &str, outcome: Option<&str>) -> f64 {
        match outcome {
            Some(outcome) => metric(name, &[("queue", &self.queue), ("outcome", outcome)]),
            None => metric(name, &[("queue", &self.queue)]),
        }
    }
}

struct Publisher {
    _conn: Connection,
    channel: Channel,
    exchange: String,
}

impl Publisher {
    async fn new(fixture: &Fixture) -> Self {
        let conn = connect(&amqp_url(), "test-publisher").await.unwrap();
        let channel = conn.create_channel().await.unwrap();
        Self { _conn: conn, channel, exchange: fixture.exchange.clone() }
    }

    async fn publish(&self, body: &[u8]) {
        let properties = BasicProperties::default().with_delivery_mode(2);
        let options = BasicPublishOptions::default();
        let exchange = self.exchange.clone().into();
        self.channel.basic_publish(exchange, "user.deleted".into(), options, body, properties).await.unwrap();
    }
}

fn event(user: Uuid) -> Vec<u8> {
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

#[tokio::test]
async fn an_event_is_handled_once_however_often_it_arrives() {
    let fixture = Fixture::new().await;
    let consumer = fixture.consumer();
    let user = Uuid::new_v4();
    let body = event(user);

    let first = consumer.process(&body).await;
    let again = consumer.process(&body).await;

    assert_eq!((first, again), (Outcome::Processed, Outcome::Duplicate));
    assert_eq!(fixture.handled(user).await, 1);
}

#[tokio::test]
async fn failures_leave_nothing_behind_and_are_told_apart() {
    let fixture = Fixture::new().await;
    let consumer = fixture.consumer();
    let (away, poison, bug) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    fixture.script().unavailable.insert(away);
    fixture.script().poisoned.insert(poison);
    fixture.script().panicking.insert(bug);

    assert_eq!(consumer.process(&event(away)).await, Outcome::Failed, "transient: retried");
    assert_eq!(consumer.process(&event(poison)).await, Outcome::Malformed, "poison: dead-lettered");
    assert_eq!(consumer.process(&event(bug)).await, Outcome::Malformed, "a panicking handler: dead-lettered");
    assert_eq!(consumer.process(b"{ not json").await, Outcome::Malformed, "not an envelope: dead-lettered");

    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM consumer_test.processed_events")
        .fetch_one(&fixture.pool)
        .await
        .unwrap();
    assert_eq!(recorded, 0, "a failed event is not marked processed, so it can be retried");
}

#[tokio::test]
async fn a_transient_failure_is_retried_while_held_and_never_dead_lettered() {
    let fixture = Fixture::new().await;
    let user = Uuid::new_v4();
    fixture.script().unavailable.insert(user);
    let cancel = fixture.run(fixture.consumer()).await;
    let publisher = Publisher::new(&fixture).await;

    publisher.publish(&event(user)).await;
    // Far more attempts than any delivery limit this consumer ever had (5).
    eventually("many failed attempts", || async { fixture.attempts(user) >= 12 }).await;
    fixture.script().unavailable.remove(&user);

    eventually("the event to be handled", || async { fixture.handled(user).await == 1 }).await;
    assert_eq!(fixture.dead_letters().await, 0, "nothing was dead-lettered");
    assert_eq!(fixture.counted("events_dead_lettered_total", None), 0.0);
    assert!(fixture.counted("events_consumed_total", Some("failed")) >= 12.0);
    cancel.cancel();
}

#[tokio::test]
async fn a_delivery_that_hangs_holds_back_none_of_the_others() {
    let fixture = Fixture::new().await;
    let (stuck, next) = (Uuid::new_v4(), Uuid::new_v4());
    fixture.script().hanging.insert(stuck);
    let cancel = fixture.run(fixture.consumer()).await;
    let publisher = Publisher::new(&fixture).await;

    publisher.publish(&event(stuck)).await;
    eventually("the first event to be taken up", || async { fixture.attempts(stuck) == 1 }).await;
    publisher.publish(&event(next)).await;

    eventually("the second event to be handled meanwhile", || async { fixture.handled(next).await == 1 }).await;
    assert_eq!(fixture.handled(stuck).await, 0, "the first one is still held");
    fixture.script().hanging.remove(&stuck);
    eventually("the first event to be handled", || async { fixture.handled(stuck).await == 1 }).await;
    cancel.cancel();
}

#[tokio::test]
async fn redeliveries_after_lost_connections_do_not_dead_letter_a_failing_event() {
    let fixture = Fixture::new().await;
    let gate = TcpGate::start(SocketAddr::from(([127, 0, 0, 1], 5672)), true).await;
    let user = Uuid::new_v4();
    fixture.script().unavailable.insert(user);
    let cancel = fixture.run(fixture.consumer_via(&format!("amqp://guest:guest@127.0.0.1:{}/%2f", gate.port))).await;
    let publisher = Publisher::new(&fixture).await;
    publisher.publish(&event(user)).await;

    // Each cut returns the held delivery to the queue, which counts it.
    for _ in 0..6 {
        let before = fixture.attempts(user);
        eventually("the event to be held and failing", || async { fixture.attempts(user) > before }).await;
        gate.close();
        wait_for_consumers(&fixture.queue, |n| n == 0).await;
        gate.open();
    }
    let before = fixture.attempts(user);
    eventually("the event to be delivered again", || async { fixture.attempts(user) > before }).await;
    fixture.script().unavailable.remove(&user);

    eventually("the event to be handled", || async { fixture.handled(user).await == 1 }).await;
    assert_eq!(fixture.dead_letters().await, 0, "six returns did not dead-letter it");
    cancel.cancel();
}

#[tokio::test]
async fn poison_is_dead_lettered_at_once_counted_and_replayed_once_fixed() {
    let fixture = Fixture::new().await;
    let (good, poison) = (Uuid::new_v4(), Uuid::new_v4());
    fixture.script().poisoned.insert(poison);
    let cancel = fixture.run(fixture.consumer()).await;
    let publisher = Publisher::new(&fixture).await;

    publisher.publish(b"poison").await;
    publisher.publish(&event(poison)).await;
    publisher.publish(&event(good)).await;

    eventually("the good event to be handled", || async { fixture.handled(good).await == 1 }).await;
    eventually("two dead letters", || async { fixture.dead_letters().await == 2 }).await;
    assert_eq!(fixture.attempts(poison), 1, "dead-lettered at the first attempt");
    assert_eq!(fixture.counted("events_consumed_total", Some("failed")), 0.0, "never retried");
    assert_eq!(fixture.counted("events_dead_lettered_total", None), 2.0);
    eventually("the depth gauge", || async { fixture.counted("events_dead_letter_queue_messages", None) == 2.0 }).await;

    fixture.script().poisoned.remove(&poison);
    let replayed = kit::events::replay_dead_letters(&fixture.amqp(&amqp_url()), &fixture.queue).await.unwrap();

    assert_eq!(replayed, 2);
    eventually("the replayed event to be handled", || async { fixture.handled(poison).await == 1 }).await;
    eventually("the unusable body back in the dead letters", || async { fixture.dead_letters().await == 1 }).await;
    assert_eq!(fixture.handled(good).await, 1, "the replay reached this queue only, once");
    cancel.cancel();
}

/// Declares the work queue as versions before this one did (a delivery limit of 4).
async fn declare_as_before(fixture: &Fixture, channel: &Channel) {
    kit::events::declare_exchange(channel, &fixture.exchange).await.unwrap();
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    arguments.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(format!("{}.dead", fixture.queue).into()));
    arguments.insert("x-delivery-limit".into(), AMQPValue::LongInt(4));
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    channel.queue_declare(fixture.queue.clone().into(), durable, arguments).await.unwrap();
    let bind = Default::default();
    let routing = "user.deleted".into();
    channel
        .queue_bind(fixture.queue.clone().into(), fixture.exchange.clone().into(), routing, bind, Default::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_queue_declared_by_an_earlier_version_is_consumed_then_recreated_keeping_its_messages() {
    let fixture = Fixture::new().await;
    let publisher = Publisher::new(&fixture).await;
    declare_as_before(&fixture, &publisher.channel).await;
    let (first, waiting) = (Uuid::new_v4(), [Uuid::new_v4(), Uuid::new_v4()]);

    let cancel = fixture.run(fixture.consumer()).await;
    publisher.publish(&event(first)).await;
    eventually("the old queue to be consumed", || async { fixture.handled(first).await == 1 }).await;
    cancel.cancel();
    wait_for_consumers(&fixture.queue, |n| n == 0).await;
    for user in waiting {
        publisher.publish(&event(user)).await;
    }
    eventually("the events to wait in the old queue", || async { queue_depth(&fixture.queue).await == Some(2) }).await;

    let moved = kit::events::recreate_queue(&fixture.amqp(&amqp_url()), &fixture.subscription()).await.unwrap();

    assert_eq!(moved, 2);
    let cancel = fixture.run(fixture.consumer()).await;
    for user in waiting {
        eventually("a kept event to be handled", || async { fixture.handled(user).await == 1 }).await;
    }
    assert_eq!(queue_depth(&format!("{}.moving", fixture.queue)).await, None, "the holding queue is gone");
    let again = kit::events::recreate_queue(&fixture.amqp(&amqp_url()), &fixture.subscription()).await.unwrap();
    assert_eq!(again, 0, "once recreated, there is nothing left to do");
    cancel.cancel();
}
