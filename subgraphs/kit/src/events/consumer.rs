//! A durable, idempotent event consumer.
//!
//! One quorum queue per consuming service, bound to the event exchange. Every
//! message is handled inside a Postgres transaction that also records its
//! `eventId` (a redelivered event is acknowledged and skipped) and is
//! acknowledged only after that transaction commits.
//!
//! Failures are of two kinds. A *poison* event (a body that is not an
//! [`Envelope`], a handler's [`Poison`] error, a handler that panics) can never
//! be handled: it is dead-lettered to `<queue>.dead` at once, counted in
//! `events_dead_lettered_total{queue}`, and can be moved back with
//! [`super::replay_dead_letters`] once the cause is fixed. Any other failure
//! (the database, storage or network away) is *transient*: the delivery is kept
//! and retried with capped, jittered exponential backoff ([`ConsumerSettings::max_backoff`])
//! until it succeeds. It is never requeued for a retry, so the broker's delivery
//! count does not grow, and deliveries are handled concurrently (up to
//! `prefetch`), so one that is retrying holds back none of the others.
//!
//! A held delivery still returns to the queue when the connection is lost or the
//! service stops, and quorum queues count those returns; RabbitMQ 4 dead-letters
//! at 20 by default. Work queues are therefore declared with a delivery limit
//! ([`DELIVERY_LIMIT`]) that no outage reaches.
//!
//! Given an in-process bus ([`Consumer::with_bus`]), the consumer does not touch RabbitMQ:
//! it subscribes to that bus, and the outbox relay of the
//! same process hands it each event (see [`super::in_process`]).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ExchangeKind};
use sqlx::{PgConnection, PgPool};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{BrokerStatus, Envelope, InProcessBus, MIN_BACKOFF, Retention, backoff, jitter};
use crate::config::{AmqpSettings, Env};

pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

/// What a service does with one event, inside the transaction that records it.
pub trait Handler: Send + Sync + 'static {
    /// Return [`Poison`] (in the error chain) for an event that can never be
    /// handled; any other error is retried.
    fn handle<'a>(&'a self, tx: &'a mut PgConnection, event: &'a Envelope) -> HandlerFuture<'a>;

    /// Runs once the transaction has committed, before the ack: work that must not
    /// happen before the data changed, such as invalidating caches. Best effort.
    fn committed<'a>(&'a self, _event: &'a Envelope) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async {})
    }
}

/// A handler's error for an event that can never be handled (its data does not
/// match the event type): the message is dead-lettered at once, not retried.
#[derive(Debug, thiserror::Error)]
#[error("unusable event: {0}")]
pub struct Poison(pub String);

/// `x-delivery-limit` of the work queues declared here. Only returns count
/// towards it (a lost connection or a stop while an event is held), never a
/// retry, so this many means a crash loop, not an outage. Not `-1`: RabbitMQ 4
/// reads that as "no limit", but 3.x dead-letters at the first return (measured
/// on 3.10.8).
pub const DELIVERY_LIMIT: i32 = 1_000_000;

/// How a service consumes one queue (its variables are the same in every service).
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Durable queue name, e.g. `tasks.user-deleted`; dead letters go to `<queue>.dead`.
    pub queue: String,
    /// Deliveries held, and handled concurrently, at once.
    pub prefetch: u16,
    /// Longest pause between two attempts at an event that keeps failing.
    pub max_backoff: Duration,
    /// How long `processed_events` rows are kept: longer than any event can wait
    /// for a redelivery, or a late duplicate would be applied again.
    pub processed_retention: Retention,
    /// How often `<queue>.dead` is measured for `events_dead_letter_queue_messages` (and the queue itself for `events_queue_messages`).
    pub dead_letter_probe_interval: Duration,
}

impl ConsumerSettings {
    /// The consumer of `user.deleted` in `service` (every service that cascades
    /// an account's deletion has one): `USER_DELETED_QUEUE` (default
    /// `<service>.user-deleted`), then as [`from_env`](Self::from_env).
    pub fn user_deleted(env: &mut Env, service: &str, default_prefetch: u16) -> Self {
        let queue = env.string("USER_DELETED_QUEUE", &format!("{service}.user-deleted"));
        Self::from_env(env, queue, default_prefetch)
    }

    /// `EVENTS_PREFETCH`, `EVENTS_MAX_BACKOFF` and `PROCESSED_EVENTS_RETENTION`.
    pub fn from_env(env: &mut Env, queue: String, default_prefetch: u16) -> Self {
        Self {
            queue,
            prefetch: env.int_in("EVENTS_PREFETCH", default_prefetch, 1, 1000),
            max_backoff: env.duration(
                "EVENTS_MAX_BACKOFF",
                "30s",
                Duration::from_millis(100),
                Duration::from_secs(3600),
            ),
            processed_retention: Retention::from_env(env, "PROCESSED_EVENTS_RETENTION", "30d"),
            dead_letter_probe_interval: Duration::from_secs(15),
        }
    }
}

/// Where and what to consume.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub routing_key: String,
    /// `<schema>.processed_events` (a compile-time constant of the service).
    pub processed_table: &'static str,
    pub settings: ConsumerSettings,
}

impl Subscription {
    pub fn queue(&self) -> &str {
        &self.settings.queue
    }
}

/// What became of one attempt at an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    Duplicate,
    /// Poison: dead-lettered at once.
    Malformed,
    /// A transient failure: tried again later.
    Failed,
}

impl Outcome {
    const ALL: [Outcome; 4] = [Outcome::Processed, Outcome::Duplicate, Outcome::Malformed, Outcome::Failed];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Processed => "processed",
            Outcome::Duplicate => "duplicate",
            Outcome::Malformed => "dead_lettered",
            Outcome::Failed => "failed",
        }
    }
}

pub struct Consumer {
    settings: AmqpSettings,
    /// Events come from the in-process bus, not RabbitMQ.
    in_process: bool,
    core: Arc<Core>,
    /// Set once `run` has been cancelled: an in-process bus then leaves this
    /// consumer's events pending instead of handing them to a stopping service.
    stopped: Arc<AtomicBool>,
    status: BrokerStatus,
    service: &'static str,
}

/// What handling one event needs, shared with an in-process bus and with the
/// task of each delivery.
pub(crate) struct Core {
    pool: PgPool,
    pub(crate) subscription: Subscription,
    handler: Arc<dyn Handler>,
}

impl Consumer {
    pub fn new(
        pool: PgPool,
        settings: AmqpSettings,
        subscription: Subscription,
        handler: Arc<dyn Handler>,
        service: &'static str,
    ) -> Self {
        register_metrics(&subscription);
        let core = Arc::new(Core { pool, subscription, handler });
        let stopped = Arc::new(AtomicBool::new(false));
        let status = BrokerStatus::for_consumer();
        Self { settings, in_process: false, core, stopped, status, service }
    }

    /// Takes its events from `bus` instead of RabbitMQ (`None`: RabbitMQ). Only
    /// a process that hosts every producer and consumer (the monolith) passes one.
    pub fn with_bus(mut self, bus: Option<&InProcessBus>) -> Self {
        // Subscribed when built, not when run: the monolith builds every service
        // before any relay runs, so no event can find its consumer missing.
        if let Some(bus) = bus {
            bus.subscribe(self.core.clone(), self.stopped.clone());
            self.status.set(true);
            self.in_process = true;
        }
        self
    }

    /// Whether the consumer is consuming its queue: a readiness check named
    /// `events_consumer`, not required (events wait in the queue meanwhile),
    /// so a broker that cannot be reached shows the service `degraded`.
    pub fn status(&self) -> BrokerStatus {
        self.status.clone()
    }

    /// Consumes until `cancel` fires, reconnecting with backoff; prunes
    /// `processed_events` meanwhile.
    pub async fn run(self, cancel: CancellationToken) {
        let pruning = self.prune_periodically(&cancel);
        if self.in_process {
            tracing::info!(queue = %self.core.subscription.queue(), "consuming from the in-process bus");
            // The relay hands events over; this only prunes and marks the end (on drop, below).
            pruning.await;
            return;
        }
        tokio::join!(pruning, self.consume(&cancel));
        self.status.set(false);
    }

    async fn consume(&self, cancel: &CancellationToken) {
        let mut delay = MIN_BACKOFF;
        while !cancel.is_cancelled() {
            let ended = self.session(cancel).await;
            // A session that got as far as consuming earns a fresh backoff.
            if self.status.connected() {
                delay = MIN_BACKOFF;
            }
            self.status.set(false);
            if let Err(e) = ended {
                tracing::warn!(queue = %self.core.subscription.queue(), error = %format!("{e:#}"), "consumer lost the broker");
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(jitter(delay)) => {}
            }
            delay = (delay * 2).min(self.settings.max_backoff);
        }
    }

    async fn prune_periodically(&self, cancel: &CancellationToken) {
        let retention = self.core.subscription.settings.processed_retention;
        let mut tick = tokio::time::interval(retention.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            retention.prune_logged(&self.core.pool, self.core.subscription.processed_table, "processed_at").await;
        }
    }

    /// Deletes `processed_events` rows older than the retention; returns how many.
    pub async fn prune_processed(&self) -> Result<u64, sqlx::Error> {
        let subscription = &self.core.subscription;
        subscription
            .settings
            .processed_retention
            .prune(&self.core.pool, subscription.processed_table, "processed_at")
            .await
    }

    async fn session(&self, cancel: &CancellationToken) -> anyhow::Result<()> {
        let conn = super::connect(self.settings.url.expose(), &format!("{}-consumer", self.service)).await?;
        let result = self.consume_on(&conn, cancel).await;
        let _ = conn.close(200, "bye".into()).await;
        result
    }

    /// Hands each delivery to a task of its own until `cancel` fires or the
    /// channel fails; then stops those tasks (a retrying one gives its delivery
    /// back) and waits for them.
    async fn consume_on(&self, conn: &Connection, cancel: &CancellationToken) -> anyhow::Result<()> {
        let subscription = &self.core.subscription;
        let channel = declare(conn, &self.settings.exchange, subscription).await?;
        channel.basic_qos(subscription.settings.prefetch, BasicQosOptions::default()).await?;
        let consume = BasicConsumeOptions::default();
        let mut deliveries = channel
            .basic_consume(subscription.queue().into(), ShortString::from(""), consume, FieldTable::default())
            .await?;
        self.status.set(true);
        tracing::info!(queue = %subscription.queue(), "consuming");
        let stop = CancellationToken::new();
        let mut in_flight = JoinSet::new();
        let mut probe = tokio::time::interval(subscription.settings.dead_letter_probe_interval);
        let ended = loop {
            tokio::select! {
                _ = cancel.cancelled() => break Ok(()),
                _ = probe.tick() => super::maintenance::report_depth(conn, subscription.queue()).await,
                Some(finished) = in_flight.join_next() => log_task_failure(subscription.queue(), finished),
                next = deliveries.next() => match next {
                    Some(Ok(delivery)) => drop(in_flight.spawn(self.core.clone().settle(delivery, stop.clone()))),
                    Some(Err(e)) => break Err(anyhow::Error::new(e).context("receiving deliveries")),
                    None => break Err(anyhow::anyhow!("the consumer was cancelled by the broker")),
                },
            }
        };
        stop.cancel();
        while in_flight.join_next().await.is_some() {}
        let _ = channel.close(200, "bye".into()).await;
        ended
    }

    /// Handles one message body: parse, skip if seen, handle and record in one
    /// transaction (tests call this directly).
    pub async fn process(&self, body: &[u8]) -> Outcome {
        self.core.process(body, None).await
    }
}

impl Drop for Consumer {
    /// A consumer that stopped or was never run takes no more in-process events:
    /// they stay pending in the outbox for one that runs.
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
    }
}

impl Core {
    /// Processes one delivery until it is acknowledged or dead-lettered; when
    /// `stop` fires between two attempts, gives it back to the queue instead.
    async fn settle(self: Arc<Self>, delivery: Delivery, stop: CancellationToken) {
        let mut failures = 0;
        let hop = traceparent_header(&delivery);
        let settled = loop {
            match self.process(&delivery.data, hop.as_deref()).await {
                Outcome::Processed | Outcome::Duplicate => break delivery.acker.ack(BasicAckOptions::default()).await,
                Outcome::Malformed => break self.dead_letter(&delivery).await,
                Outcome::Failed => {
                    failures += 1;
                    if !self.pause_before_retry(failures, &stop).await {
                        // Back to the queue, for the next session (or replica).
                        break delivery.acker.nack(BasicNackOptions { multiple: false, requeue: true }).await;
                    }
                }
            }
        };
        if let Err(e) = settled {
            // The channel is gone: the broker gives the message to the next session.
            tracing::warn!(queue = %self.subscription.queue(), error = %e, "could not settle a delivery; it will be redelivered");
        }
    }

    async fn dead_letter(&self, delivery: &Delivery) -> lapin::Result<bool> {
        let rejected = delivery.acker.reject(BasicRejectOptions { requeue: false }).await;
        if matches!(rejected, Ok(true)) {
            let queue = self.subscription.queue();
            tracing::error!(queue, "unusable event; dead-lettered to {queue}.dead");
            count_dead_lettered(queue);
        }
        rejected
    }

    /// Waits out the backoff after `failures` failures in a row; `false` if
    /// `stop` fired first.
    async fn pause_before_retry(&self, failures: u32, stop: &CancellationToken) -> bool {
        let pause = backoff(failures, self.subscription.settings.max_backoff);
        let queue = self.subscription.queue();
        tracing::warn!(queue, failures, retry_in_ms = pause.as_millis() as u64, "event not handled; will retry");
        tokio::select! {
            _ = stop.cancelled() => false,
            _ = tokio::time::sleep(pause) => true,
        }
    }

    /// Handles one message body. `hop` is the trace context of its hand-over
    /// (the publish's AMQP header, or the in-process relay's span), preferred
    /// to the one the envelope carries from the request that wrote it.
    pub(crate) async fn process(&self, body: &[u8], hop: Option<&str>) -> Outcome {
        let outcome = match serde_json::from_slice::<Envelope>(body) {
            Ok(event) => {
                let span = self.event_span(&event, hop);
                self.attempt(&event).instrument(span).await
            }
            Err(_) => {
                tracing::warn!(queue = %self.subscription.queue(), "not an event envelope");
                Outcome::Malformed
            }
        };
        metrics::counter!(
            "events_consumed_total",
            "queue" => self.subscription.queue().to_owned(),
            "routing_key" => self.subscription.routing_key.clone(),
            "outcome" => outcome.as_str(),
        )
        .increment(1);
        outcome
    }

    /// The span of one attempt at `event`, in the trace of the request that
    /// wrote it: each log line of the attempt names the queue, the event and
    /// the trace.
    fn event_span(&self, event: &Envelope, hop: Option<&str>) -> tracing::Span {
        let span = tracing::info_span!(
            "event",
            queue = %self.subscription.queue(),
            event_id = %event.event_id,
            trace_id = tracing::field::Empty,
            otel.kind = "consumer",
            otel.name = tracing::field::Empty,
        );
        let traceparent = hop.or(event.traceparent.as_deref());
        let trace_id = if crate::telemetry::tracing_enabled() {
            span.record("otel.name", format!("process {}", event.event_type));
            crate::telemetry::follow_traceparent(&span, traceparent);
            crate::telemetry::trace_id(&span)
        } else {
            traceparent.and_then(|t| crate::http::traceparent_trace_id(t.as_bytes())).map(str::to_owned)
        };
        span.record("trace_id", trace_id.as_deref().unwrap_or(""));
        span
    }

    async fn attempt(&self, event: &Envelope) -> Outcome {
        // A handler that panics would panic again on every delivery: poison too.
        let applied = AssertUnwindSafe(self.apply(event)).catch_unwind().await;
        match applied {
            Ok(Ok(true)) => {
                let lag = (chrono::Utc::now() - event.occurred_at).to_std().unwrap_or_default();
                metrics::histogram!("events_processing_lag_seconds", "queue" => self.subscription.queue().to_owned())
                    .record(lag.as_secs_f64());
                Outcome::Processed
            }
            Ok(Ok(false)) => Outcome::Duplicate,
            Ok(Err(e)) if e.chain().any(|cause| cause.is::<Poison>()) => {
                tracing::warn!(event_id = %event.event_id, error = %format!("{e:#}"), "unusable event");
                Outcome::Malformed
            }
            Ok(Err(e)) => {
                tracing::warn!(event_id = %event.event_id, error = %format!("{e:#}"), "event handling failed");
                Outcome::Failed
            }
            Err(_) => {
                tracing::error!(event_id = %event.event_id, "the event handler panicked");
                Outcome::Malformed
            }
        }
    }

    async fn apply(&self, event: &Envelope) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let first_time = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {} (event_id) VALUES ($1) ON CONFLICT DO NOTHING",
            self.subscription.processed_table
        )))
        .bind(event.event_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !first_time {
            return Ok(false);
        }
        self.handler.handle(&mut tx, event).await.context("handler")?;
        tx.commit().await?;
        self.handler.committed(event).await;
        Ok(true)
    }
}

/// The `traceparent` AMQP header the relay sets on what it publishes.
fn traceparent_header(delivery: &Delivery) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    let (_, value) = headers.inner().iter().find(|(name, _)| name.as_str() == "traceparent")?;
    match value {
        AMQPValue::LongString(value) => std::str::from_utf8(value.as_bytes()).ok().map(str::to_owned),
        _ => None,
    }
}

fn log_task_failure(queue: &str, finished: Result<(), tokio::task::JoinError>) {
    if let Err(e) = finished {
        tracing::error!(queue, error = %e, "a delivery's task failed");
    }
}

/// The subscription's counters at 0 for every outcome, so that "nothing
/// consumed" reads as a rate of 0, not as no series.
fn register_metrics(subscription: &Subscription) {
    crate::metrics::handle();
    let queue = subscription.queue().to_owned();
    for outcome in Outcome::ALL {
        metrics::counter!(
            "events_consumed_total",
            "queue" => queue.clone(),
            "routing_key" => subscription.routing_key.clone(),
            "outcome" => outcome.as_str(),
        )
        .absolute(0);
    }
    metrics::counter!("events_dead_lettered_total", "queue" => queue).absolute(0);
}

/// One more event of `queue` given up on (`events_dead_lettered_total{queue}`).
pub(crate) fn count_dead_lettered(queue: &str) {
    metrics::counter!("events_dead_lettered_total", "queue" => queue.to_owned()).increment(1);
}

/// Declares the exchange, the dead-letter exchange and queue, and the work queue
/// bound to the exchange; returns a channel to consume on.
///
/// A work queue declared earlier with other arguments (an older version's small
/// `x-delivery-limit`) makes RabbitMQ refuse the declaration: it is then consumed
/// as it is, with an error logged each session, until an operator recreates it
/// (`SERVICE events recreate-queue`, see README).
async fn declare(conn: &Connection, exchange: &str, subscription: &Subscription) -> anyhow::Result<Channel> {
    let channel = conn.create_channel().await?;
    super::declare_exchange(&channel, exchange).await?;
    let queue = subscription.queue();
    declare_dead_letters(&channel, queue).await?;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    let channel = match channel.queue_declare(queue.into(), durable, work_queue_arguments(queue)).await {
        Ok(_) => channel,
        Err(e) if refused_with(&e, AMQPSoftError::PRECONDITIONFAILED) => {
            tracing::error!(
                queue,
                error = %e,
                "the queue exists with the arguments of an earlier version, whose delivery limit can dead-letter \
                 an event that is redelivered a few times after lost connections; consuming it as it is until it \
                 is recreated (`events recreate-queue`)"
            );
            let channel = conn.create_channel().await?;
            let passive = QueueDeclareOptions { passive: true, ..Default::default() };
            channel.queue_declare(queue.into(), passive, FieldTable::default()).await?;
            channel
        }
        Err(e) => return Err(e.into()),
    };
    let bind = QueueBindOptions::default();
    channel
        .queue_bind(queue.into(), exchange.into(), subscription.routing_key.clone().into(), bind, FieldTable::default())
        .await?;
    Ok(channel)
}

/// `<queue>.dead`: a durable fanout exchange and a durable queue bound to it.
pub(crate) async fn declare_dead_letters(channel: &Channel, queue: &str) -> lapin::Result<()> {
    let dead = format!("{queue}.dead");
    let durable_exchange = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel
        .exchange_declare(dead.clone().into(), ExchangeKind::Fanout, durable_exchange, FieldTable::default())
        .await?;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    channel.queue_declare(dead.clone().into(), durable, FieldTable::default()).await?;
    channel
        .queue_bind(dead.clone().into(), dead.into(), "".into(), QueueBindOptions::default(), FieldTable::default())
        .await
}

/// A quorum queue that dead-letters to `<queue>.dead`, with [`DELIVERY_LIMIT`].
pub(crate) fn work_queue_arguments(queue: &str) -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    arguments.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(format!("{queue}.dead").into()));
    arguments.insert("x-delivery-limit".into(), AMQPValue::LongInt(DELIVERY_LIMIT));
    arguments
}

/// Whether RabbitMQ refused an operation with `reason`: `PRECONDITIONFAILED`
/// for a declaration whose arguments differ from the existing queue's,
/// `NOTFOUND` for a passive declaration of a missing one.
pub(crate) fn refused_with(error: &lapin::Error, reason: AMQPSoftError) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(e) if *e.kind() == AMQPErrorKind::Soft(reason))
}
