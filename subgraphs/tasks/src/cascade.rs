//! `user.deleted`: the user's tasks go, in the transaction that records the
//! event; their cached reads go stale once it has committed.

use std::sync::Arc;

use kit::events::consumer::{Consumer, Handler, HandlerFuture, Poison, Subscription};
use kit::events::{Envelope, USER_DELETED, UserDeleted};
use sqlx::PgConnection;

use crate::config::Settings;
use crate::service::TaskService;

/// The default queue name.
pub const QUEUE: &str = "tasks.user-deleted";
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

pub fn consumer(settings: &Settings, service: TaskService) -> Consumer {
    let subscription = Subscription {
        queue: settings.consumer.queue.clone(),
        routing_key: USER_DELETED.to_owned(),
        processed_table: PROCESSED_TABLE,
        prefetch: settings.consumer.prefetch,
        max_attempts: settings.consumer.max_attempts,
    };
    let pool = service.store().pool().clone();
    Consumer::new(pool, settings.amqp.clone(), subscription, Arc::new(UserDeletedHandler { service }), crate::SERVICE)
}
