//! The event bus: services announce changes through a transactional outbox;
//! a relay carries them to RabbitMQ (topic exchange, persistent messages,
//! publisher confirms), or, in a process that hosts every service, straight to
//! the consumers of that process ([`InProcessBus`]). Consumers must be
//! idempotent on `eventId`.

pub mod consumer;
pub mod in_process;
pub mod maintenance;
pub mod outbox;
pub mod relay;

use std::time::Duration;

use chrono::{DateTime, Utc};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

pub use in_process::InProcessBus;
pub use maintenance::{recreate_queue, replay_dead_letters};
pub use outbox::Outbox;
pub use relay::{BrokerStatus, Relay};

use crate::config::Env;

/// The JSON body of every event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u32,
    pub occurred_at: DateTime<Utc>,
    pub data: serde_json::Value,
    /// The W3C `traceparent` of the span that wrote the event, when traces are
    /// exported: the relay's publish and each consumer's handling join that
    /// trace. Absent from events written without one; other readers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// `user.deleted`: an account and everything it owned must go.
pub const USER_DELETED: &str = "user.deleted";

/// Data of [`USER_DELETED`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserDeleted {
    pub user_id: Uuid,
}

/// Opens a connection to the broker.
pub async fn connect(url: &str, name: &str) -> lapin::Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(name.to_owned().into());
    Connection::connect(url, properties).await
}

/// Declares the event exchange, identically wherever it is declared (publishers
/// and consumers alike, since RabbitMQ refuses a redeclaration with other
/// arguments). Messages no queue is bound for go to `<exchange>.unrouted`
/// instead of vanishing, so an event published before its consumers first
/// started can still be replayed.
pub async fn declare_exchange(channel: &Channel, exchange: &str) -> lapin::Result<()> {
    let unrouted = format!("{exchange}.unrouted");
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel.exchange_declare(unrouted.clone().into(), ExchangeKind::Fanout, durable, FieldTable::default()).await?;
    channel
        .queue_declare(
            unrouted.clone().into(),
            QueueDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            unrouted.clone().into(),
            unrouted.clone().into(),
            ShortString::from(""),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut arguments = FieldTable::default();
    arguments.insert("alternate-exchange".into(), AMQPValue::LongString(unrouted.into()));
    channel.exchange_declare(exchange.to_owned().into(), ExchangeKind::Topic, durable, arguments).await
}

/// Removes the exchange and its unrouted companion (test clean-up).
pub async fn delete_exchange(channel: &Channel, exchange: &str) -> lapin::Result<()> {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let unrouted = format!("{exchange}.unrouted");
    channel.exchange_delete(exchange.to_owned().into(), ExchangeDeleteOptions::default()).await?;
    channel.exchange_delete(unrouted.clone().into(), ExchangeDeleteOptions::default()).await?;
    channel.queue_delete(unrouted.into(), QueueDeleteOptions::default()).await?;
    Ok(())
}

/// First pause after a failure; doubled per failure up to a cap.
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// The pause after `failures` failures in a row: [`MIN_BACKOFF`] doubled per
/// failure, at most `max`, jittered (see [`jitter`]).
pub(crate) fn backoff(failures: u32, max: Duration) -> Duration {
    let doubled = MIN_BACKOFF.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)));
    jitter(doubled.min(max))
}

/// Between half and all of `delay`, so replicas (and the deliveries of one
/// replica) do not retry in lockstep.
pub(crate) fn jitter(delay: Duration) -> Duration {
    let ms = delay.as_millis().max(2) as u64;
    Duration::from_millis(rand::rng().random_range(ms / 2..=ms))
}

/// How long rows of a bookkeeping table (the outbox's published rows,
/// `processed_events`) are kept, and how often older ones are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub keep: Duration,
    pub every: Duration,
}

/// Rows deleted per statement when pruning, so one prune never holds a long lock.
const PRUNE_BATCH: i64 = 10_000;

impl Retention {
    /// Pruned every hour.
    pub const HOURLY: Duration = Duration::from_secs(3600);

    /// `keep` from the variable `name` (a duration, at least an hour), pruned hourly.
    pub fn from_env(env: &mut Env, name: &str, default: &str) -> Self {
        let keep = env.duration(name, default, Duration::from_secs(3600), Duration::from_secs(10 * 365 * 24 * 3600));
        Self { keep, every: Self::HOURLY }
    }

    /// Deletes the rows of `table` whose `column` is older than `keep`, in
    /// batches; returns how many went. `table` and `column` are compile-time
    /// constants of the service, never input. Rows whose `column` is null (an
    /// outbox row not yet published) are never deleted.
    pub async fn prune(&self, pool: &PgPool, table: &str, column: &str) -> Result<u64, sqlx::Error> {
        let sql = format!(
            "DELETE FROM {table} WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM {table} WHERE {column} < now() - make_interval(secs => $1) LIMIT {PRUNE_BATCH}))"
        );
        let mut deleted = 0;
        loop {
            let batch = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(self.keep.as_secs_f64())
                .execute(pool)
                .await?
                .rows_affected();
            deleted += batch;
            if batch < PRUNE_BATCH as u64 {
                return Ok(deleted);
            }
        }
    }

    /// [`Self::prune`], logged; for the periodic tasks.
    pub(crate) async fn prune_logged(&self, pool: &PgPool, table: &str, column: &str) {
        match self.prune(pool, table, column).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(table, deleted, "pruned old rows"),
            Err(e) => tracing::warn!(table, error = %e, "could not prune old rows; will try again"),
        }
    }
}
