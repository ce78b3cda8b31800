//! The outbox relay: publishes committed outbox rows to RabbitMQ and marks them
//! sent once the broker confirms them.
//!
//! Rows are claimed with `FOR UPDATE SKIP LOCKED`, so replicas never publish the
//! same row concurrently; a row is marked only after its publisher confirm, so a
//! broker outage loses nothing. The one window for a duplicate is a crash between
//! the confirm and the commit: consumers deduplicate on `eventId`.
//!
//! Given an in-process bus ([`Relay::with_bus`]), the relay delivers each row to the
//! consumers of its own process instead, and marks it once they have all
//! settled it (see [`super::in_process`]).
//!
//! Published rows are kept for inspection for a while ([`Relay::with_retention`],
//! `OUTBOX_RETENTION`), then deleted by the relay at start and every hour.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::in_process::{Delivery, InProcessBus};
use super::{MIN_BACKOFF, Outbox, Retention, jitter};
use crate::config::{AmqpSettings, Env};
use crate::health::{Check, CheckFuture};

/// Rows published per transaction.
const BATCH: i64 = 100;

/// Whether the relay (or a consumer) currently holds a broker connection (a
/// readiness check).
#[derive(Clone)]
pub struct BrokerStatus {
    connected: Arc<AtomicBool>,
    /// The relay's: `rabbitmq`, or `event_bus` for the in-process bus; a
    /// consumer's: `events_consumer`.
    name: &'static str,
}

impl BrokerStatus {
    /// `rabbitmq`, or `event_bus` with the in-process bus.
    pub(crate) fn for_relay(bus: Option<&InProcessBus>) -> Self {
        let name = if bus.is_some() { "event_bus" } else { "rabbitmq" };
        Self { connected: Arc::default(), name }
    }

    /// A consumer's: connected once it consumes its queue (always, on the in-process bus).
    pub(crate) fn for_consumer() -> Self {
        Self { connected: Arc::default(), name: "events_consumer" }
    }

    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }
}

impl Check for BrokerStatus {
    fn name(&self) -> &'static str {
        self.name
    }

    /// Not required: while the broker is away the outbox keeps every event,
    /// the queue keeps what is owed to a consumer, and the service keeps serving.
    fn required(&self) -> bool {
        false
    }

    fn check(&self) -> CheckFuture<'_> {
        let connected = self.connected();
        Box::pin(async move { if connected { Ok(()) } else { Err("not connected".to_owned()) } })
    }
}

/// How often the outbox backlog is measured.
const BACKLOG_REPORT_INTERVAL: Duration = Duration::from_secs(5);

pub struct Relay {
    pool: PgPool,
    outbox: Outbox,
    settings: AmqpSettings,
    /// Where rows go instead of RabbitMQ, in a process hosting every consumer.
    bus: Option<InProcessBus>,
    service: &'static str,
    status: BrokerStatus,
    retention: Retention,
}

/// `OUTBOX_RETENTION`: how long published rows are kept (default 7 days).
pub fn retention_from_env(env: &mut Env) -> Retention {
    Retention::from_env(env, "OUTBOX_RETENTION", "7d")
}

/// What one in-process delivery pass did.
#[derive(Debug, Clone, Copy)]
pub struct InProcessPass {
    /// Rows every subscriber settled, now marked published.
    pub settled: usize,
    /// When the earliest row still owed to some subscriber is due again.
    pub retry_at: Option<Instant>,
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    id: i64,
    event_id: Uuid,
    event_type: String,
    routing_key: String,
    payload: String,
    created_at: chrono::DateTime<chrono::Utc>,
    /// The envelope's trace context, if it has one.
    traceparent: Option<String>,
}

impl PendingRow {
    /// The span of handing this row on (`operation`: `publish` to the broker,
    /// `deliver` in process), in the trace of the request that wrote it.
    fn span(&self, operation: &'static str, destination: &str) -> tracing::Span {
        let span = tracing::info_span!(
            target: crate::telemetry::TRACE_ONLY,
            "relay",
            otel.kind = "producer",
            otel.name = %format_args!("{operation} {}", self.routing_key),
            messaging.operation.name = operation,
            messaging.destination.name = %destination,
            messaging.message.id = %self.event_id,
        );
        crate::telemetry::follow_traceparent(&span, self.traceparent.as_deref());
        span
    }
}

impl Relay {
    pub fn new(pool: PgPool, outbox: Outbox, settings: AmqpSettings, service: &'static str) -> Self {
        let status = BrokerStatus::for_relay(None);
        let retention = Retention { keep: Duration::from_secs(7 * 24 * 3600), every: Retention::HOURLY };
        Self { pool, outbox, settings, bus: None, service, status, retention }
    }

    /// Delivers to the consumers of `bus` instead of RabbitMQ (`None`: RabbitMQ).
    /// Only a process that hosts every producer and consumer (the monolith)
    /// passes one: a standalone service's events must reach other processes.
    pub fn with_bus(mut self, bus: Option<&InProcessBus>) -> Self {
        self.status = BrokerStatus::for_relay(bus);
        self.bus = bus.cloned();
        self
    }

    /// Registers `events_published_total{routing_key}` at 0 for each of the
    /// routing keys the service publishes, so a dashboard shows 0 before the first event.
    pub fn publishing(self, routing_keys: &[&str]) -> Self {
        crate::metrics::handle();
        for routing_key in routing_keys {
            metrics::counter!("events_published_total", "routing_key" => (*routing_key).to_owned()).absolute(0);
        }
        self
    }

    /// Keeps published rows as `retention` says instead of 7 days (see [`retention_from_env`]).
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    pub fn status(&self) -> BrokerStatus {
        self.status.clone()
    }

    /// Runs until `cancel` fires, reconnecting with jittered exponential
    /// backoff; prunes published rows meanwhile, broker or not.
    pub async fn run(self, cancel: CancellationToken) {
        let relaying = async {
            match self.bus.clone() {
                Some(bus) => self.run_in_process(&bus, &cancel).await,
                None => self.run_with_broker(&cancel).await,
            }
            self.status.set(false);
        };
        tokio::join!(relaying, self.prune_periodically(&cancel), self.report_backlog_periodically(&cancel));
        tracing::debug!("outbox relay stopped");
    }

    /// `events_outbox_unpublished_events{service}` and
    /// `events_outbox_oldest_unpublished_age_seconds{service}`, read from the
    /// table (so they hold whatever replica wrote the rows) every
    /// [`BACKLOG_REPORT_INTERVAL`].
    async fn report_backlog_periodically(&self, cancel: &CancellationToken) {
        let pending = metrics::gauge!("events_outbox_unpublished_events", "service" => self.service);
        let oldest = metrics::gauge!("events_outbox_oldest_unpublished_age_seconds", "service" => self.service);
        let sql = format!(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
             FROM {} WHERE published_at IS NULL",
            self.outbox.table()
        );
        let mut tick = tokio::time::interval(BACKLOG_REPORT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            match sqlx::query_as::<_, (i64, f64)>(sqlx::AssertSqlSafe(sql.clone())).fetch_one(&self.pool).await {
                Ok((count, age)) => {
                    pending.set(count as f64);
                    oldest.set(age.max(0.0));
                }
                Err(e) => tracing::debug!(error = %e, "could not measure the outbox backlog"),
            }
        }
    }

    async fn prune_periodically(&self, cancel: &CancellationToken) {
        let mut tick = tokio::time::interval(self.retention.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.retention.prune_logged(&self.pool, &self.outbox.table(), "published_at").await;
        }
    }

    /// Deletes published rows older than the retention (never a pending one); returns how many.
    pub async fn prune(&self) -> Result<u64, sqlx::Error> {
        self.retention.prune(&self.pool, &self.outbox.table(), "published_at").await
    }

    async fn run_with_broker(&self, cancel: &CancellationToken) {
        let mut delay = MIN_BACKOFF;
        while !cancel.is_cancelled() {
            let outcome = self.session(cancel).await;
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

    /// Delivers pending rows to this process's consumers until `cancel` fires:
    /// woken by `NOTIFY`, the poll interval, or the earliest retry due.
    async fn run_in_process(&self, bus: &InProcessBus, cancel: &CancellationToken) {
        self.status.set(true);
        tracing::info!("outbox relay delivering to the in-process bus");
        let mut listener = self.listen().await;
        let mut error_delay = MIN_BACKOFF;
        while !cancel.is_cancelled() {
            let wait = match self.deliver_pending(bus).await {
                Ok(pass) => {
                    error_delay = MIN_BACKOFF;
                    let until_retry = pass.retry_at.map(|at| at.saturating_duration_since(Instant::now()));
                    until_retry.map_or(self.settings.poll_interval, |d| d.min(self.settings.poll_interval))
                }
                Err(e) => {
                    let pause = jitter(error_delay);
                    tracing::warn!(error = %format!("{e:#}"), retry_in_ms = pause.as_millis() as u64, "outbox relay cannot read the outbox");
                    error_delay = (error_delay * 2).min(self.settings.max_backoff);
                    pause
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                woke = next_notification(&mut listener) => {
                    if let Err(e) = woke {
                        tracing::warn!(error = %e, "outbox LISTEN connection lost; polling instead");
                        listener = None;
                    }
                }
            }
        }
    }

    /// Hands every pending row to the in-process bus, a page at a time, and
    /// marks those every subscriber has settled in the transaction that claimed
    /// their page. Rows still owed to a subscriber never hold back later ones.
    pub async fn deliver_pending(&self, bus: &InProcessBus) -> anyhow::Result<InProcessPass> {
        let mut pass = InProcessPass { settled: 0, retry_at: None };
        let mut after = 0;
        while let Some(last) = self.deliver_page(bus, after, &mut pass).await? {
            after = last;
        }
        Ok(pass)
    }

    /// Delivers the page of pending rows after id `after`; returns the id of its
    /// last row when the page was full (more may follow).
    async fn deliver_page(
        &self,
        bus: &InProcessBus,
        after: i64,
        pass: &mut InProcessPass,
    ) -> anyhow::Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        let rows = self.claim(&mut tx, after).await?;
        let mut settled = Vec::with_capacity(rows.len());
        for row in &rows {
            let delivered = bus.deliver(row.event_id, &row.routing_key, row.payload.as_bytes());
            match delivered.instrument(row.span("deliver", &row.routing_key)).await {
                Delivery::Settled => {
                    settled.push(row.id);
                    metrics::counter!("events_published_total", "routing_key" => row.routing_key.clone()).increment(1);
                }
                Delivery::RetryAt(at) => pass.retry_at = Some(pass.retry_at.map_or(at, |earliest| earliest.min(at))),
            }
        }
        if !settled.is_empty() {
            self.mark_published(&mut tx, &settled).await?;
        }
        tx.commit().await?;
        pass.settled += settled.len();
        Ok(rows.last().filter(|_| rows.len() == BATCH as usize).map(|row| row.id))
    }

    /// Locks up to [`BATCH`] pending rows after id `after`, oldest first,
    /// skipping rows another relay holds.
    async fn claim(&self, tx: &mut PgConnection, after: i64) -> Result<Vec<PendingRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, event_id, event_type, routing_key, payload::text AS payload, created_at,
                    payload->>'traceparent' AS traceparent
             FROM {} WHERE published_at IS NULL AND id > $1 ORDER BY id LIMIT {BATCH} FOR UPDATE SKIP LOCKED",
            self.outbox.table()
        )))
        .bind(after)
        .fetch_all(&mut *tx)
        .await
    }

    async fn mark_published(&self, tx: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {} SET published_at = now() WHERE id = ANY($1)",
            self.outbox.table()
        )))
        .bind(ids)
        .execute(&mut *tx)
        .await
        .map(|_| ())
    }

    /// Publishes one batch of pending rows; returns how many were confirmed.
    pub async fn publish_pending(&self, channel: &Channel) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows = self.claim(&mut tx, 0).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut confirms = Vec::with_capacity(rows.len());
        for row in &rows {
            let span = row.span("publish", &self.settings.exchange);
            let mut properties = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_message_id(row.event_id.to_string().into())
                .with_type(row.event_type.clone().into())
                .with_timestamp(row.created_at.timestamp().max(0) as u64)
                .with_app_id(self.service.into());
            // As a header too, naming this publish: a consumer's span becomes its child.
            if let Some(traceparent) = crate::telemetry::traceparent(&span) {
                let mut headers = FieldTable::default();
                headers.insert("traceparent".into(), AMQPValue::LongString(traceparent.into()));
                properties = properties.with_headers(headers);
            }
            let confirm = channel
                .basic_publish(
                    self.settings.exchange.clone().into(),
                    ShortString::from(row.routing_key.clone()),
                    BasicPublishOptions::default(),
                    row.payload.as_bytes(),
                    properties,
                )
                .instrument(span)
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
        self.mark_published(&mut tx, &confirmed).await?;
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
