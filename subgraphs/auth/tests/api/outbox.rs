use std::net::SocketAddr;

use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TcpGate, amqp_url, spawn_app, spawn_app_with, wait_for};

#[tokio::test]
async fn an_event_written_during_a_broker_outage_is_delivered_exactly_once_afterwards() {
    // The app reaches RabbitMQ only through a gate that starts closed.
    let gate = TcpGate::start(SocketAddr::from(([127, 0, 0, 1], 5672)), false).await;
    let gated_url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", gate.port);
    let app = spawn_app_with(|env| env.set("RABBITMQ_URL", gated_url)).await;

    // A consumer bound to the exchange, connected directly.
    let conn = kit::events::connect(&amqp_url(), "test-consumer").await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    kit::events::declare_exchange(&channel, &app.exchange).await.unwrap();
    let queue = channel
        .queue_declare("".into(), QueueDeclareOptions { exclusive: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.name().clone(),
            app.exchange.clone().into(),
            "user.deleted".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    let session = app.signed_up().await;
    let deleted = app
        .graphql(
            Some(&session.access_token),
            "mutation($p: String!) { deleteAccount(password: $p) }",
            json!({ "p": PASSWORD }),
        )
        .await;
    assert_eq!(deleted["data"]["deleteAccount"], true, "{deleted}");
    let ready: Value = app.get("/health/ready").await.json().await.unwrap();
    assert_eq!(ready["checks"]["rabbitmq"]["status"], "down");
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.outbox WHERE published_at IS NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(pending, 1, "the event waits in the outbox");

    gate.open();

    let message = wait_for("the event to arrive", || {
        let channel = channel.clone();
        let queue = queue.name().clone();
        async move { channel.basic_get(queue, BasicGetOptions { no_ack: true }).await.unwrap() }
    })
    .await;
    let envelope: Value = serde_json::from_slice(&message.delivery.data).unwrap();
    assert_eq!(envelope["type"], "user.deleted");
    assert_eq!(envelope["version"], 1);
    assert_eq!(envelope["data"]["userId"], session.user_id.as_str());
    assert!(envelope["occurredAt"].is_string());
    assert_eq!(message.delivery.properties.message_id().as_ref().map(|s| s.as_str()), envelope["eventId"].as_str());
    assert_eq!(message.delivery.properties.delivery_mode(), &Some(2), "persistent");

    // Once the row is marked sent the relay never sends it again: so one message, and no more.
    app.eventually("the outbox row to be marked sent", || async {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.outbox WHERE published_at IS NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        pending == 0
    })
    .await;
    let extra = channel.basic_get(queue.name().clone(), BasicGetOptions { no_ack: true }).await.unwrap();
    assert!(extra.is_none(), "exactly one delivery");
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn the_relay_prunes_published_rows_older_than_outbox_retention() {
    let first = spawn_app().await;
    let published_ago = |seconds: f64| {
        let event_id = uuid::Uuid::new_v4();
        let pool = first.pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO auth.outbox (event_id, event_type, routing_key, payload, published_at)
                 VALUES ($1, 'test.retention', 'test.retention', '{}', now() - make_interval(secs => $2))",
            )
            .bind(event_id)
            .bind(seconds)
            .execute(&pool)
            .await
            .unwrap();
            event_id
        }
    };
    published_ago(3.0 * 3600.0).await;
    let recent = published_ago(600.0).await;
    let database_url = first.database_url();

    // A replica told to keep published rows for an hour (7 days by default) prunes as it starts.
    let _replica = spawn_app_with(|env| {
        env.set("DATABASE_URL", database_url);
        env.set("OUTBOX_RETENTION", "1h");
    })
    .await;

    wait_for("the three-hour-old row to be pruned", || async {
        let left: Vec<uuid::Uuid> =
            sqlx::query_scalar("SELECT event_id FROM auth.outbox WHERE event_type = 'test.retention'")
                .fetch_all(&first.pool)
                .await
                .unwrap();
        (left == [recent]).then_some(())
    })
    .await;
}
