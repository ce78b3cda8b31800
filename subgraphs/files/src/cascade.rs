//! The `user.deleted` cascade: a deleted account's files go, rows and blobs.
//!
//! Rows are deleted and their blobs queued (`files.blob_deletions`) inside the
//! transaction that records the event, so both happen exactly once; blobs are
//! deleted after the commit, and a deletion that fails stays queued for the
//! periodic retry.

use std::pin::Pin;
use std::sync::Arc;

use kit::config::AmqpSettings;
use kit::events::consumer::{Consumer, ConsumerSettings, Handler, HandlerFuture, Poison, Subscription};
use kit::events::{Envelope, USER_DELETED, UserDeleted};
use sqlx::PgConnection;

use crate::repository::{self, Repository};

pub const PROCESSED_TABLE: &str = "files.processed_events";

pub struct UserDeletedHandler {
    repository: Repository,
}

impl Handler for UserDeletedHandler {
    fn handle<'a>(&'a self, tx: &'a mut PgConnection, event: &'a Envelope) -> HandlerFuture<'a> {
        Box::pin(async move {
            if event.event_type != USER_DELETED {
                tracing::warn!(event_type = %event.event_type, "not a user.deleted event; skipped");
                return Ok(());
            }
            let data: UserDeleted =
                serde_json::from_value(event.data.clone()).map_err(|e| Poison(format!("user.deleted data: {e}")))?;
            let queued = repository::retire_owner(tx, data.user_id).await?;
            tracing::info!(user_id = %data.user_id, files = queued.len(), "deleting a deleted user's files");
            Ok(())
        })
    }

    fn committed<'a>(&'a self, _event: &'a Envelope) -> Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            // Everything queued, this event's blobs included; failures stay queued.
            if let Err(e) = self.repository.retry_blob_deletions(DRAIN_BATCH).await {
                tracing::warn!(error = %format!("{e:#}"), "could not delete queued blobs; will retry");
            }
        })
    }
}

/// Queued blobs deleted right after an event commits; the rest wait for the periodic retry.
const DRAIN_BATCH: i64 = 10_000;

/// What the consumer reads: `user.deleted` on the configured queue.
pub fn subscription(consumer: &ConsumerSettings) -> Subscription {
    Subscription { routing_key: USER_DELETED.to_owned(), processed_table: PROCESSED_TABLE, settings: consumer.clone() }
}

pub fn consumer(amqp: AmqpSettings, consumer: &ConsumerSettings, repository: Repository) -> Consumer {
    let pool = repository.pool().clone();
    let handler = Arc::new(UserDeletedHandler { repository });
    Consumer::new(pool, amqp, subscription(consumer), handler, crate::SERVICE)
}
