//! The account-deletion cascade as one trace, in one process: the router's
//! request, auth's, the outbox event, its publish (RabbitMQ) or hand-over (the
//! in-process bus), and each consumer's handling with its statements. A test
//! binary of its own: the subscriber and the tracer provider are global to
//! the process.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use kit::testing::telemetry::{CapturedLogs, ReceivedSpan, Receiver};
use kit::testing::wait_for_consumer;
use serde_json::{Value, json};

use helpers::{Mode, TestMonolith, spawn_monolith};

/// Deletes the account of `token` in the trace `trace_id` (the client's own).
async fn delete_account_in_trace(app: &TestMonolith, token: &str, trace_id: &str) {
    let answer: Value = app
        .client
        .post(app.api())
        .bearer_auth(token)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({ "query": "mutation { deleteAccount(password: \"cascade traced 1\") }" }))
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON body");
    assert_eq!(answer["data"]["deleteAccount"], true, "{answer}");
}

fn consumer_span<'a>(spans: &'a [ReceivedSpan], queue: &str) -> Option<&'a ReceivedSpan> {
    spans.iter().find(|s| s.kind == "SPAN_KIND_CONSUMER" && s.attribute("queue") == Some(queue))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cascade_joins_the_trace_of_the_request_that_deleted_the_account() {
    let receiver = Receiver::start().await;
    let logs = CapturedLogs::default();
    let mut env = kit::Env::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str())]);
    let settings = kit::config::TelemetrySettings::from_env(&mut env);
    env.finish().expect("telemetry settings");
    let telemetry = kit::telemetry::init_with_writer(&settings, "taskgraph", logs.clone());
    assert!(kit::telemetry::tracing_enabled(), "this binary's subscriber is the first and only one");

    for (mode, trace_id, hand_over) in [
        (Mode::Brokers, "0af7651916cd43dd8448eb211c80319c", "publish user.deleted"),
        (Mode::InProcess, "5b8aa5a2d2c872e8321cf37308d69df2", "deliver user.deleted"),
    ] {
        let app = spawn_monolith(mode).await;
        if mode == Mode::Brokers {
            wait_for_consumer(&app.tasks_queue).await;
            wait_for_consumer(&app.files_queue).await;
        }
        let (_, token) = app.register("cascade@example.com", "cascade traced 1").await;
        app.graphql(Some(&token), "mutation { createTask(input: { title: \"Traced\" }) { id } }", json!({})).await;

        delete_account_in_trace(&app, &token, trace_id).await;

        let queues = [app.tasks_queue.as_str(), app.files_queue.as_str()];
        let trace = receiver
            .wait_for_trace(&telemetry, trace_id, |spans| queues.iter().all(|q| consumer_span(spans, q).is_some()))
            .await;
        let auth = trace
            .iter()
            .find(|s| s.kind == "SPAN_KIND_SERVER" && s.attribute("service") == Some("auth"))
            .expect("auth's request span");
        let relay = trace.iter().find(|s| s.name == hand_over).unwrap_or_else(|| panic!("{mode:?}: {trace:#?}"));
        assert_eq!(relay.kind, "SPAN_KIND_PRODUCER");
        assert_eq!(relay.parent_span_id, auth.span_id, "{mode:?}: the event was written in auth's request");
        for queue in queues {
            let consumer = consumer_span(&trace, queue).expect("the consumer's span");
            assert_eq!(consumer.name, "process user.deleted");
            assert_eq!(consumer.parent_span_id, relay.span_id, "{mode:?}: {queue} handled what the relay handed over");
            assert!(
                trace.iter().any(
                    |s| s.parent_span_id == consumer.span_id && s.attribute("db.system.name") == Some("postgresql")
                ),
                "{mode:?}: {queue}'s statements are in the trace: {trace:#?}"
            );
        }
        // The consumer's log lines name the trace too.
        let tasks_line = logs.lines().into_iter().find(|line| {
            line["message"] == "deleted the tasks of a deleted user" && line["span"]["trace_id"] == trace_id
        });
        let tasks_line = tasks_line.unwrap_or_else(|| panic!("{mode:?}: {:#?}", logs.lines()));
        assert_eq!(tasks_line["span"]["queue"], app.tasks_queue);
    }
}
