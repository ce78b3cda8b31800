//! Writing events in the same transaction as the change they announce.

use chrono::Utc;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::Envelope;

/// A service's outbox table, `<schema>.outbox`.
///
/// The table (see any service's first migration):
/// `id bigserial, event_id uuid unique, event_type text, routing_key text,
/// payload jsonb, created_at timestamptz, published_at timestamptz null`.
#[derive(Debug, Clone, Copy)]
pub struct Outbox {
    schema: &'static str,
}

impl Outbox {
    /// `schema` is a compile-time constant of the service (it is spliced into SQL).
    pub const fn new(schema: &'static str) -> Self {
        Self { schema }
    }

    pub fn table(&self) -> String {
        format!("{}.outbox", self.schema)
    }

    /// The NOTIFY channel that wakes the relay.
    pub fn channel(&self) -> String {
        format!("{}_outbox", self.schema)
    }

    /// Adds an event to the outbox inside the caller's transaction; the relay
    /// publishes it once (and only if) that transaction commits. The event
    /// carries the trace context of the span running (the request's).
    pub async fn enqueue(
        &self,
        conn: &mut PgConnection,
        event_type: &str,
        data: &impl Serialize,
    ) -> Result<Envelope, sqlx::Error> {
        let envelope = Envelope {
            event_id: Uuid::now_v7(),
            event_type: event_type.to_owned(),
            version: 1,
            occurred_at: Utc::now(),
            data: serde_json::to_value(data).map_err(|e| sqlx::Error::Encode(Box::new(e)))?,
            traceparent: crate::telemetry::current_traceparent(),
        };
        let payload = serde_json::to_value(&envelope).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        // The table name is a constant of the service, never input.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {} (event_id, event_type, routing_key, payload) VALUES ($1, $2, $2, $3)",
            self.table()
        )))
        .bind(envelope.event_id)
        .bind(event_type)
        .bind(payload)
        .execute(&mut *conn)
        .await?;
        // Delivered on commit only, like the row itself.
        sqlx::query("SELECT pg_notify($1, '')").bind(self.channel()).execute(&mut *conn).await?;
        Ok(envelope)
    }
}
