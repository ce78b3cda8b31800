//! The event bus: services announce changes through a transactional outbox;
//! a relay carries them to RabbitMQ (topic exchange, persistent messages,
//! publisher confirms), or, in a process that hosts every service, straight to
//! the consumers of that process ([`InProcessBus`]). Consumers must be
//! idempotent on `eventId`.

pub mod consumer;
pub mod in_process;
pub mod outbox;
pub mod relay;

use chrono::{DateTime, Utc};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use in_process::InProcessBus;
pub use outbox::Outbox;
pub use relay::{BrokerStatus, Relay};

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
