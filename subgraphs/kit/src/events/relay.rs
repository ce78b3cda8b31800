//! The outbox relay: publishes committed outbox rows to RabbitMQ and marks them
//! sent once the broker confirms them.
//!
//! Rows are claimed with `FOR UPDATE SKIP LOCKED`, so replicas never publish the
//! same row concurrently; a row is marked only after its publisher confirm, so a
//! broker outage loses nothing. The one window for a duplicate is a crash between
//! the confirm and the commit: consumers deduplicate on `eventId`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel};
use rand::Rng;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Outbox;
use crate::config::AmqpSettings;
use crate::health::{Check, CheckFuture};

/// Rows published per transaction.
const BATCH: i64 = 100;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Published rows are kept this long for inspection, then removed.
const RETENTION: &str = "7 days";

/// Whether the relay currently holds a broker connection (a readiness check).
#[derive(Clone, Default)]
pub struct BrokerStatus(Arc<AtomicBool>);

impl BrokerStatus {
    pub fn connected(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, connected: bool) {
        self.0.store(connected, Ordering::Relaxed);
    }
}

impl Check for BrokerStatus {
    fn name(&self) -> &'static str {
        "rabbitmq"
    }

    /// Not required: while the broker is away the outbox keeps every event and
    /// the service keeps serving.
    fn required(&self) -> bool {
        false
    }

    fn check(&self) -> CheckFuture<'_> {
        let connected = self.connected();
        Box::pin(async move { if connected { Ok(()) } else { Err("not connected".to_owned()) } })
    }
}

pub struct Relay {
    pool: PgPool,
    outbox: Outbox,
    settings: AmqpSettings,
    service: &'static str,
    status: BrokerStatus,
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    id: i64,
    event_id: Uuid,
    event_type: String,
    routing_key: String,
    payload: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl Relay {
    pub fn new(pool: PgPool, outbox: Outbox, settings: AmqpSettings, service: &'static str) -> Self {
        Self { pool, outbox, settings, service, status: BrokerStatus::default() }
    }

    pub fn status(&self) -> BrokerStatus {
        self.status.clone()
    }

    /// Runs until `cancel` fires, reconnecting with jittered exponential backoff.
    pub async fn run(self, cancel: CancellationToken) {
        let mut delay = MIN_BACKOFF;
        while !cancel.is_cancelled() {
            let outcome = self.session(&cancel).await;
            let was_connected = self.status.connected();
            self.status.set(false);
            if cancel.is_cancelled() {
                break;
            }
            if was_connected {
                delay = MIN_BACKOFF;
            }
            let pause = jitter(delay);
            if let Err(e) = outcome {
                tracing::warn!(error = %format!("{e:#}"), retry_in_ms = pause.as_millis() as u64, "outbox relay cannot reach the broker");
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
            delay = (delay * 2).min(self.settings.max_backoff);
        }
        tracing::debug!("outbox relay stopped");
    }

    async fn session(&self, cancel: &CancellationToken) -> anyhow::Result<()> {
        let conn = super::connect(self.settings.url.expose(), &format!("{}-outbox-relay", self.service))
            .await
            .context("connecting to RabbitMQ")?;
        let channel = conn.create_channel().await.context("opening a channel")?;
        let result = async {
            channel.confirm_select(ConfirmSelectOptions::default()).await?;
            super::declare_exchange(&channel, &self.settings.exchange).await?;
            self.status.set(true);
            tracing::info!(exchange = %self.settings.exchange, "outbox relay connected");
            self.pump(&channel, cancel).await
        }
        .await;
        // Channel first: closing the connection under an open channel makes lapin log an error.
        let _ = channel.close(200, "shutting down".into()).await;
        let _ = conn.close(200, "shutting down".into()).await;
        result
    }

    /// Publishes until the outbox is empty, then waits for a NOTIFY, the poll
    /// interval, or cancellation.
    async fn pump(&self, channel: &Channel, cancel: &CancellationToken) -> anyhow::Result<()> {
        let mut listener = self.listen().await;
        self.prune().await;
        loop {
            while self.publish_pending(channel).await? == BATCH as usize {
                if cancel.is_cancelled() {
                    return Ok(());
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                woke = next_notification(&mut listener) => {
                    if let Err(e) = woke {
                        tracing::warn!(error = %e, "outbox LISTEN connection lost; polling instead");
                        listener = None;
                    }
                }
            }
            if !channel.status().connected() {
                anyhow::bail!("broker channel closed");
            }
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener.listen(&self.outbox.channel()).await.ok()?;
        Some(listener)
    }

    async fn prune(&self) {
        let sql = format!("DELETE FROM {} WHERE published_at < now() - interval '{RETENTION}'", self.outbox.table());
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&self.pool).await {
            tracing::warn!(error = %e, "could not prune the outbox");
        }
    }

    /// Publishes one batch of pending rows; returns how many were confirmed.
    pub async fn publish_pending(&self, channel: &Channel) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<PendingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, event_id, event_type, routing_key, payload::text AS payload, created_at
             FROM {} WHERE published_at IS NULL ORDER BY id LIMIT {BATCH} FOR UPDATE SKIP LOCKED",
            self.outbox.table()
        )))
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut confirms = Vec::with_capacity(rows.len());
        for row in &rows {
            let properties = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_message_id(row.event_id.to_string().into())
                .with_type(row.event_type.clone().into())
                .with_timestamp(row.created_at.timestamp().max(0) as u64)
                .with_app_id(self.service.into());
            let confirm = channel
                .basic_publish(
                    self.settings.exchange.clone().into(),
                    ShortString::from(row.routing_key.clone()),
                    BasicPublishOptions::default(),
                    row.payload.as_bytes(),
                    properties,
                )
                .await?;
            confirms.push(confirm);
        }
        let mut confirmed = Vec::with_capacity(rows.len());
        let mut refused = false;
        for (row, confirm) in rows.iter().zip(confirms) {
            if confirm.await?.is_ack() {
                confirmed.push(row.id);
                metrics::counter!("events_published_total", "routing_key" => row.routing_key.clone()).increment(1);
            } else {
                refused = true;
                break;
            }
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {} SET published_at = now() WHERE id = ANY($1)",
            self.outbox.table()
        )))
        .bind(&confirmed)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if refused {
            anyhow::bail!("the broker refused (nacked) a message");
        }
        Ok(confirmed.len())
    }
}

async fn next_notification(listener: &mut Option<PgListener>) -> Result<(), sqlx::Error> {
    match listener {
        Some(l) => l.recv().await.map(|_| ()),
        None => std::future::pending().await,
    }
}

/// Between half and all of `delay`, so replicas do not reconnect in lockstep.
fn jitter(delay: Duration) -> Duration {
    let ms = delay.as_millis().max(2) as u64;
    Duration::from_millis(rand::rng().random_range(ms / 2..=ms))
}
