//! Operating the queues a service consumes: how many dead letters wait
//! (`events_dead_letter_queue_messages{queue}`), moving them back for another
//! try, and recreating a work queue declared by an earlier version with other
//! arguments. The commands behind `SERVICE events ...`.
//!
//! Messages are moved one at a time: read from the source without
//! acknowledging, published to the target with a publisher confirm, then
//! acknowledged. A move that stops half-way leaves the message in the source (or,
//! after the confirm, in both: consumers skip a duplicate `eventId`), never in
//! neither.

use std::process::ExitCode;

use anyhow::Context;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::protocol::AMQPSoftError;
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};

use super::consumer::{Subscription, declare_dead_letters, refused_with, work_queue_arguments};
use crate::config::AmqpSettings;

/// Sets `events_dead_letter_queue_messages{queue}` to the number of messages
/// in `<queue>.dead`, and `events_queue_messages{queue}` to those ready in
/// `queue` (passive declares, on a channel of their own since a failed one
/// closes its channel).
pub(crate) async fn report_depth(conn: &Connection, queue: &str) {
    match message_count(conn, &format!("{queue}.dead")).await {
        Ok(Some(depth)) => {
            metrics::gauge!("events_dead_letter_queue_messages", "queue" => queue.to_owned()).set(f64::from(depth))
        }
        Ok(None) => tracing::warn!(queue, "the dead-letter queue is missing"),
        Err(e) => tracing::debug!(queue, error = %e, "could not read the dead-letter queue's depth"),
    }
    match message_count(conn, queue).await {
        Ok(Some(ready)) => metrics::gauge!("events_queue_messages", "queue" => queue.to_owned()).set(f64::from(ready)),
        Ok(None) => {}
        Err(e) => tracing::debug!(queue, error = %e, "could not read the queue's depth"),
    }
}

/// Messages ready in `queue`, or `None` when it does not exist.
async fn message_count(conn: &Connection, queue: &str) -> lapin::Result<Option<u32>> {
    let probe = conn.create_channel().await?;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let found = probe.queue_declare(queue.into(), passive, FieldTable::default()).await;
    let _ = probe.close(200, "probe".into()).await;
    match found {
        Ok(declared) => Ok(Some(declared.message_count())),
        Err(e) if refused_with(&e, AMQPSoftError::NOTFOUND) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Moves the messages waiting in `<queue>.dead` back to `queue` (straight to
/// it, not through the exchange, so no other service sees them again); returns
/// how many. Only those waiting when it starts: one that fails again and is
/// dead-lettered anew stays there.
pub async fn replay_dead_letters(settings: &AmqpSettings, queue: &str) -> anyhow::Result<u64> {
    let conn = super::connect(settings.url.expose(), "replay-dead-letters").await.context("connecting to RabbitMQ")?;
    let replayed = async {
        let dead = format!("{queue}.dead");
        message_count(&conn, queue).await?.with_context(|| format!("there is no queue {queue}"))?;
        let waiting = message_count(&conn, &dead).await?.with_context(|| format!("there is no queue {dead}"))?;
        move_messages(&conn, &dead, queue, waiting).await
    }
    .await;
    let _ = conn.close(200, "done".into()).await;
    replayed
}

/// Recreates `subscription`'s work queue with the arguments this version
/// declares, keeping every message, when it was declared with others (an
/// earlier version's delivery limit). Run it with the service's consumers
/// stopped. Events published meanwhile wait in `<queue>.moving`, a queue bound
/// like the work queue; run again after an interruption, it finishes the move.
/// Returns how many messages it moved back into the new queue.
pub async fn recreate_queue(settings: &AmqpSettings, subscription: &Subscription) -> anyhow::Result<u64> {
    let conn = super::connect(settings.url.expose(), "recreate-queue").await.context("connecting to RabbitMQ")?;
    let recreated = async {
        let channel = publishing_channel(&conn).await?;
        let outcome = recreate_on(&conn, &channel, &settings.exchange, subscription).await;
        let _ = channel.close(200, "done".into()).await;
        outcome
    }
    .await;
    let _ = conn.close(200, "done".into()).await;
    recreated
}

async fn recreate_on(
    conn: &Connection,
    channel: &Channel,
    exchange: &str,
    subscription: &Subscription,
) -> anyhow::Result<u64> {
    let (queue, routing_key) = (subscription.queue(), subscription.routing_key.as_str());
    let holding = format!("{queue}.moving");
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    super::declare_exchange(channel, exchange).await?;
    declare_dead_letters(channel, queue).await?;
    if !is_current(conn, queue).await? {
        let consumers = consumer_count(conn, queue).await?;
        anyhow::ensure!(consumers == 0, "{queue} has {consumers} consumers: stop the service's consumers first");
        channel.queue_declare(holding.as_str().into(), durable, work_queue_arguments(queue)).await?;
        bind(channel, &holding, exchange, routing_key).await?;
        channel.queue_unbind(queue.into(), exchange.into(), routing_key.into(), FieldTable::default()).await?;
        let waiting = message_count(conn, queue).await?.unwrap_or(0);
        move_messages(conn, queue, &holding, waiting).await?;
        delete_drained(conn, channel, queue).await?;
        channel.queue_declare(queue.into(), durable, work_queue_arguments(queue)).await?;
    }
    bind(channel, queue, exchange, routing_key).await?;
    if message_count(conn, &holding).await?.is_none() {
        return Ok(0);
    }
    // Events routed between the new queue's binding and this are in both: duplicates, skipped.
    channel.queue_unbind(holding.as_str().into(), exchange.into(), routing_key.into(), FieldTable::default()).await?;
    let held = message_count(conn, &holding).await?.unwrap_or(0);
    let moved = move_messages(conn, &holding, queue, held).await?;
    delete_drained(conn, channel, &holding).await?;
    Ok(moved)
}

/// Deletes `queue` once it holds no message and has no consumer (quorum queues
/// refuse `if-empty` and `if-unused`, so both are checked first; nothing can
/// arrive in between, the queue being unbound).
async fn delete_drained(conn: &Connection, channel: &Channel, queue: &str) -> anyhow::Result<()> {
    let left = message_count(conn, queue).await?.unwrap_or(0);
    // `basic.get` on a quorum queue counts as a consumer until the queue has
    // processed the channel's close, a moment after it: wait that moment out.
    let mut consumers = consumer_count(conn, queue).await?;
    for _ in 0..50 {
        if consumers == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        consumers = consumer_count(conn, queue).await?;
    }
    anyhow::ensure!(left == 0 && consumers == 0, "{queue} still has {left} messages and {consumers} consumers");
    channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .with_context(|| format!("deleting {queue}"))?;
    Ok(())
}

/// Whether `queue` exists with the arguments this version declares (declaring
/// it so, which creates it when missing).
async fn is_current(conn: &Connection, queue: &str) -> anyhow::Result<bool> {
    let probe = conn.create_channel().await?;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    let declared = probe.queue_declare(queue.into(), durable, work_queue_arguments(queue)).await;
    let _ = probe.close(200, "probe".into()).await;
    match declared {
        Ok(_) => Ok(true),
        Err(e) if refused_with(&e, AMQPSoftError::PRECONDITIONFAILED) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn consumer_count(conn: &Connection, queue: &str) -> lapin::Result<u32> {
    let probe = conn.create_channel().await?;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let declared = probe.queue_declare(queue.into(), passive, FieldTable::default()).await;
    let _ = probe.close(200, "probe".into()).await;
    declared.map(|q| q.consumer_count())
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, routing_key: &str) -> lapin::Result<()> {
    let options = QueueBindOptions::default();
    channel.queue_bind(queue.into(), exchange.into(), routing_key.into(), options, FieldTable::default()).await
}

async fn publishing_channel(conn: &Connection) -> lapin::Result<Channel> {
    let channel = conn.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok(channel)
}

/// Moves up to `limit` messages from `from` to `to` (see the module docs);
/// returns how many moved.
async fn move_messages(conn: &Connection, from: &str, to: &str, limit: u32) -> anyhow::Result<u64> {
    // A channel of its own, closed when done: its gets no longer hold `from`.
    let channel = publishing_channel(conn).await?;
    let moved = move_on(&channel, from, to, limit).await;
    let _ = channel.close(200, "moved".into()).await;
    moved
}

async fn move_on(channel: &Channel, from: &str, to: &str, limit: u32) -> anyhow::Result<u64> {
    let mut moved = 0;
    while moved < u64::from(limit) {
        let Some(message) = channel.basic_get(from.into(), BasicGetOptions { no_ack: false }).await? else { break };
        let delivery = message.delivery;
        let mandatory = BasicPublishOptions { mandatory: true, ..Default::default() };
        let properties = moved_properties(&delivery.properties);
        let confirm = channel.basic_publish("".into(), to.into(), mandatory, &delivery.data, properties).await?.await?;
        // Unacknowledged, the message goes back to `from` when the channel closes.
        anyhow::ensure!(
            matches!(confirm, Confirmation::Ack(None)),
            "{to} did not take a message (it stays in {from}); {moved} moved"
        );
        delivery.acker.ack(BasicAckOptions::default()).await?;
        moved += 1;
    }
    Ok(moved)
}

/// The message's properties without the delivery count its last queue gave it:
/// the target queue counts afresh.
fn moved_properties(properties: &BasicProperties) -> BasicProperties {
    let Some(headers) = properties.headers() else { return properties.clone() };
    let mut kept = headers.inner().clone();
    kept.remove(&ShortString::from("x-delivery-count"));
    properties.clone().with_headers(FieldTable::from(kept))
}

/// `SERVICE events <command>`, for the queues `subscriptions` of a service:
/// `replay-dead-letters` or `recreate-queue`. Prints what it did, one line per queue.
pub fn command(service: &str, args: &[String], amqp: &AmqpSettings, subscriptions: &[Subscription]) -> ExitCode {
    let usage = format!("usage: {service} events replay-dead-letters | recreate-queue");
    let Some(name) = args.first().filter(|_| args.len() == 1) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    if !matches!(name.as_str(), "replay-dead-letters" | "recreate-queue") {
        eprintln!("{usage}   (unknown command {name:?})");
        return ExitCode::from(2);
    }
    let runtime = match crate::cli::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{service}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run_for_each(service, name, amqp, subscriptions))
}

async fn run_for_each(service: &str, name: &str, amqp: &AmqpSettings, subscriptions: &[Subscription]) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for subscription in subscriptions {
        let queue = subscription.queue();
        match run_one(name, amqp, subscription).await {
            Ok(line) => println!("{queue}: {line}"),
            Err(e) => {
                eprintln!("{service}: {queue}: {e:#}");
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}

async fn run_one(name: &str, amqp: &AmqpSettings, subscription: &Subscription) -> anyhow::Result<String> {
    let queue = subscription.queue();
    if name == "replay-dead-letters" {
        let moved = replay_dead_letters(amqp, queue).await?;
        Ok(format!("moved {moved} dead letters from {queue}.dead back to {queue}"))
    } else {
        let moved = recreate_queue(amqp, subscription).await?;
        Ok(format!("has this version's arguments; {moved} messages moved into it"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn an_unknown_or_missing_command_is_refused_before_anything_is_dialled() {
        let amqp = AmqpSettings {
            // Never dialled.
            url: Secret::new("amqp://guest:guest@127.0.0.1:1/%2f"),
            exchange: "unused".into(),
            poll_interval: std::time::Duration::from_secs(1),
            max_backoff: std::time::Duration::from_secs(1),
        };
        for args in [vec![], vec!["replay".to_owned()], vec!["replay-dead-letters".to_owned(), "extra".to_owned()]] {
            assert_eq!(command("tasks", &args, &amqp, &[]), ExitCode::from(2), "{args:?}");
        }
    }
}
