//! `user.deleted`: the user's tasks go, in the transaction that records the
//! event; their cached reads go stale once it has committed.

use std::sync::Arc;

use kit::config::AmqpSettings;
use kit::events::consumer::{Consumer, ConsumerSettings, Handler, HandlerFuture, Poison, Subscription};
use kit::events::{Envelope, USER_DELETED, UserDeleted};
use sqlx::PgConnection;

use crate::service::TaskService;

pub const PROCESSED_TABLE: &str = "tasks.processed_events";

pub struct UserDeletedHandler {
    service: TaskService,
}

impl Handler for UserDeletedHandler {
    fn handle<'a>(&'a self, tx: &'a mut PgConnection, event: &'a Envelope) -> HandlerFuture<'a> {
        Box::pin(async move {
            let data: UserDeleted =
                serde_json::from_value(event.data.clone()).map_err(|e| Poison(format!("user.deleted data: {e}")))?;
            let removed = self.service.store().retire_owner(tx, data.user_id).await?;
            tracing::info!(user_id = %data.user_id, removed, "deleted the tasks of a deleted user");
            Ok(())
        })
    }

    fn committed<'a>(
        &'a self,
        event: &'a Envelope,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            if let Ok(data) = serde_json::from_value::<UserDeleted>(event.data.clone()) {
                self.service.written(data.user_id).await;
            }
        })
    }
}

/// What the consumer reads: `user.deleted` on the configured queue.
pub fn subscription(consumer: &ConsumerSettings) -> Subscription {
    Subscription { routing_key: USER_DELETED.to_owned(), processed_table: PROCESSED_TABLE, settings: consumer.clone() }
}

pub fn consumer(amqp: AmqpSettings, consumer: &ConsumerSettings, service: TaskService) -> Consumer {
    let pool = service.store().pool().clone();
    let handler = Arc::new(UserDeletedHandler { service });
    Consumer::new(pool, amqp, subscription(consumer), handler, crate::SERVICE)
}
