//! Traces across the router and the subgraphs it calls, exported over
//! OTLP/HTTP to a collector of the test's own. A test binary of its own: the
//! subscriber and the tracer provider are global to the process.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use kit::testing::telemetry::{CapturedLogs, ReceivedSpan, Receiver};
use serde_json::{Value, json};

use helpers::{repo_path, spawn_auth, spawn_router};

fn request_span<'a>(spans: &'a [ReceivedSpan], service: &str) -> Option<&'a ReceivedSpan> {
    spans.iter().find(|s| s.kind == "SPAN_KIND_SERVER" && s.attribute("service") == Some(service))
}

fn fetch_span<'a>(spans: &'a [ReceivedSpan], subgraph: &str) -> Option<&'a ReceivedSpan> {
    spans.iter().find(|s| s.kind == "SPAN_KIND_CLIENT" && s.attribute("subgraph") == Some(subgraph))
}

/// The log lines a request span of `service` wrote, with the trace they name.
fn logged_trace_ids(logs: &CapturedLogs, service: &str) -> Vec<String> {
    logs.lines()
        .iter()
        .filter(|line| line["span"]["service"] == service && line["message"] == "served")
        .map(|line| line["span"]["trace_id"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_is_one_trace_from_the_router_through_the_subgraph_to_postgres() {
    let receiver = Receiver::start().await;
    let logs = CapturedLogs::default();
    let mut env = kit::Env::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str())]);
    let settings = kit::config::TelemetrySettings::from_env(&mut env);
    env.finish().expect("telemetry settings");
    let telemetry = kit::telemetry::init_with_writer(&settings, "router", logs.clone());
    assert!(kit::telemetry::tracing_enabled(), "this binary's subscriber is the first and only one");
    let auth = spawn_auth().await;
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[
            ("SUBGRAPH_AUTH_URL", format!("{}/graphql", auth.running.address)),
            ("JWKS_URL", format!("{}/.well-known/jwks.json", auth.running.address)),
        ],
    )
    .await;

    // No traceparent from the client: the router begins the trace.
    let registered = router
        .graphql(
            None,
            "mutation { register(email: \"traced@example.com\", password: \"traced all 1\") { user { email } } }",
            json!({}),
        )
        .await;
    assert_eq!(registered["data"]["register"]["user"]["email"], "traced@example.com", "{registered}");
    let router_span = receiver
        .wait_for(&telemetry, "the router's request span", |spans| request_span(spans, "router").cloned())
        .await;
    assert_eq!(router_span.parent_span_id, "", "a root: the router started the trace");
    assert_eq!(router_span.name, "POST /graphql");
    assert_eq!(router_span.attribute("http.response.status_code"), Some("200"));
    let trace = receiver
        .wait_for_trace(&telemetry, &router_span.trace_id, |spans| {
            request_span(spans, "auth").is_some_and(|auth| spans.iter().any(|s| s.parent_span_id == auth.span_id))
        })
        .await;

    let fetch = fetch_span(&trace, "auth").expect("the router's fetch from auth");
    assert_eq!(fetch.parent_span_id, router_span.span_id, "the fetch is the router request's child");
    assert_eq!(fetch.name, "subgraph auth");
    let auth_span = request_span(&trace, "auth").expect("auth's request span, in the router's trace");
    assert_eq!(auth_span.parent_span_id, fetch.span_id, "auth's request is the fetch's child: {trace:#?}");
    let statements: Vec<&ReceivedSpan> =
        trace.iter().filter(|s| s.attribute("db.system.name") == Some("postgresql")).collect();
    assert!(
        statements
            .iter()
            .any(|s| s.parent_span_id == auth_span.span_id && s.name.starts_with("INSERT INTO auth.users")),
        "the account's INSERT, below auth's request span: {statements:#?}"
    );
    assert!(statements.iter().all(|s| s.kind == "SPAN_KIND_CLIENT"));
    // The log lines of both requests name the trace, though the client sent none.
    assert!(logged_trace_ids(&logs, "router").contains(&router_span.trace_id), "{:#?}", logs.lines());
    assert!(logged_trace_ids(&logs, "auth").contains(&router_span.trace_id), "{:#?}", logs.lines());

    // A client's traceparent: the router's span is its child, in its trace.
    let (client_trace, client_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let answer: Value = router
        .http
        .post(router.url("/graphql"))
        .header("traceparent", format!("00-{client_trace}-{client_span}-01"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON body");
    assert_eq!(answer["data"]["__typename"], "Query", "{answer}");
    let continued =
        receiver.wait_for_trace(&telemetry, client_trace, |spans| request_span(spans, "router").is_some()).await;
    assert_eq!(request_span(&continued, "router").expect("the router's span").parent_span_id, client_span);
    assert!(logged_trace_ids(&logs, "router").contains(&client_trace.to_owned()));
}
