//! A durable, idempotent event consumer.
//!
//! One quorum queue per consuming service, bound to the event exchange. Every
//! message is handled inside a Postgres transaction that also records its
//! `eventId` (a redelivered event is acknowledged and skipped) and is
//! acknowledged only after that transaction commits. A malformed message is
//! dead-lettered at once; one whose handling keeps failing is retried with
//! backoff and dead-lettered by the broker after `max_attempts` deliveries
//! (`x-delivery-limit`). The loop reconnects with backoff and never stops on a
//! bad message.
//!
//! With [`AmqpSettings::in_process`] set, the consumer does not touch RabbitMQ:
//! it subscribes to that in-process bus when built, and the outbox relay of the
//! same process hands it each event (see [`super::in_process`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, ExchangeKind};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::Envelope;
use crate::config::AmqpSettings;

pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

/// What a service does with one event, inside the transaction that records it.
pub trait Handler: Send + Sync + 'static {
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

/// Where and what to consume.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Durable queue name, e.g. `tasks.user-deleted`; dead letters go to `<queue>.dead`.
    pub queue: String,
    pub routing_key: String,
    /// `<schema>.processed_events` (a compile-time constant of the service).
    pub processed_table: &'static str,
    pub prefetch: u16,
    pub max_attempts: u32,
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    Duplicate,
    Malformed,
    Failed,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
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
    core: Arc<Core>,
    /// Set once `run` has been cancelled: an in-process bus then leaves this
    /// consumer's events pending instead of handing them to a stopping service.
    stopped: Arc<AtomicBool>,
    service: &'static str,
}

/// What handling one event needs, shared with an in-process bus.
pub(crate) struct Core {
    pool: PgPool,
    pub(crate) subscription: Subscription,
    handler: Arc<dyn Handler>,
}

pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(100);
pub(crate) const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

impl Consumer {
    pub fn new(
        pool: PgPool,
        settings: AmqpSettings,
        subscription: Subscription,
        handler: Arc<dyn Handler>,
        service: &'static str,
    ) -> Self {
        let core = Arc::new(Core { pool, subscription, handler });
        let stopped = Arc::new(AtomicBool::new(false));
        // Subscribed when built, not when run: the monolith builds every service
        // before any relay runs, so no event can find its consumer missing.
        if let Some(bus) = &settings.in_process {
            bus.subscribe(core.clone(), stopped.clone());
        }
        Self { settings, core, stopped, service }
    }

    /// Consumes until `cancel` fires, reconnecting with backoff.
    pub async fn run(self, cancel: CancellationToken) {
        if self.settings.in_process.is_some() {
            tracing::info!(queue = %self.core.subscription.queue, "consuming from the in-process bus");
            // The relay hands events over; this only marks the end (on drop, below).
            cancel.cancelled().await;
            return;
        }
        let mut delay = MIN_BACKOFF;
        while !cancel.is_cancelled() {
            match self.session(&cancel).await {
                Ok(()) => delay = MIN_BACKOFF,
                Err(e) => {
                    tracing::warn!(queue = %self.core.subscription.queue, error = %format!("{e:#}"), "consumer lost the broker")
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(self.settings.max_backoff);
        }
    }

    async fn session(&self, cancel: &CancellationToken) -> anyhow::Result<()> {
        let conn = super::connect(self.settings.url.expose(), &format!("{}-consumer", self.service)).await?;
        let channel = conn.create_channel().await?;
        let result = async {
            declare(&channel, &self.settings.exchange, &self.core.subscription).await?;
            channel.basic_qos(self.core.subscription.prefetch, BasicQosOptions::default()).await?;
            let mut deliveries = channel
                .basic_consume(
                    self.core.subscription.queue.clone().into(),
                    ShortString::from(""),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            tracing::info!(queue = %self.core.subscription.queue, "consuming");
            loop {
                let next = tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    next = deliveries.next() => next,
                };
                let Some(delivery) = next else { anyhow::bail!("the consumer was cancelled by the broker") };
                self.settle(delivery?).await?;
            }
        }
        .await;
        let _ = channel.close(200, "bye".into()).await;
        let _ = conn.close(200, "bye".into()).await;
        result
    }

    /// Processes one delivery and acknowledges, retries or dead-letters it.
    pub async fn settle(&self, delivery: Delivery) -> anyhow::Result<Outcome> {
        let outcome = self.process(&delivery.data).await;
        match outcome {
            Outcome::Processed | Outcome::Duplicate => {
                delivery.acker.ack(BasicAckOptions::default()).await?;
            }
            Outcome::Malformed => {
                tracing::error!(queue = %self.core.subscription.queue, "malformed event; dead-lettered");
                delivery.acker.reject(BasicRejectOptions { requeue: false }).await?;
            }
            Outcome::Failed => {
                // The broker counts deliveries and dead-letters past the limit; pause a
                // little more on each redelivery so a failing dependency can recover.
                let attempt = delivery_count(&delivery);
                let pause = (MIN_BACKOFF * 2u32.saturating_pow(attempt)).min(MAX_RETRY_DELAY);
                tokio::time::sleep(pause).await;
                delivery.acker.nack(BasicNackOptions { multiple: false, requeue: true }).await?;
            }
        }
        metrics::counter!(
            "events_consumed_total",
            "routing_key" => self.core.subscription.routing_key.clone(),
            "outcome" => outcome.as_str(),
        )
        .increment(1);
        Ok(outcome)
    }

    /// Handles one message body: parse, skip if seen, handle and record in one transaction.
    pub async fn process(&self, body: &[u8]) -> Outcome {
        self.core.process(body).await
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
    pub(crate) async fn process(&self, body: &[u8]) -> Outcome {
        let Ok(event) = serde_json::from_slice::<Envelope>(body) else {
            return Outcome::Malformed;
        };
        match self.apply(&event).await {
            Ok(true) => Outcome::Processed,
            Ok(false) => Outcome::Duplicate,
            Err(e) if e.downcast_ref::<Poison>().is_some() => {
                tracing::warn!(event_id = %event.event_id, error = %format!("{e:#}"), "unusable event");
                Outcome::Malformed
            }
            Err(e) => {
                tracing::warn!(event_id = %event.event_id, error = %format!("{e:#}"), "event handling failed; will retry");
                Outcome::Failed
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

fn delivery_count(delivery: &Delivery) -> u32 {
    let headers = delivery.properties.headers().as_ref();
    let value = headers.and_then(|h| h.inner().get(&ShortString::from("x-delivery-count")));
    match value {
        Some(AMQPValue::LongLongInt(n)) => (*n).clamp(0, 16) as u32,
        Some(AMQPValue::LongInt(n)) => (*n).clamp(0, 16) as u32,
        Some(AMQPValue::LongUInt(n)) => (*n).min(16),
        _ => 0,
    }
}

/// Declares the exchange, the dead-letter exchange and queue, and the work queue.
pub async fn declare(channel: &Channel, exchange: &str, subscription: &Subscription) -> lapin::Result<()> {
    super::declare_exchange(channel, exchange).await?;
    let dead = format!("{}.dead", subscription.queue);
    let durable_exchange = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel
        .exchange_declare(dead.clone().into(), ExchangeKind::Fanout, durable_exchange, FieldTable::default())
        .await?;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    channel.queue_declare(dead.clone().into(), durable, FieldTable::default()).await?;
    channel
        .queue_bind(
            dead.clone().into(),
            dead.clone().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    arguments.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(dead.into()));
    arguments.insert("x-delivery-limit".into(), AMQPValue::LongInt(subscription.max_attempts.saturating_sub(1) as i32));
    channel.queue_declare(subscription.queue.clone().into(), durable, arguments).await?;
    channel
        .queue_bind(
            subscription.queue.clone().into(),
            exchange.to_owned().into(),
            subscription.routing_key.clone().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}
