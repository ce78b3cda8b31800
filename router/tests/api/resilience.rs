//! Subgraph failures: the circuit breaker (closed → open → half-open → closed)
//! and retries of queries, never of mutations.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use kit::testing::{TcpGate, eventually};
use serde_json::{Value, json};

use crate::helpers::{SupergraphFile, compose, spawn_router, spawn_subgraph};

struct Greeting;

#[Object(name = "Query")]
impl Greeting {
    /// Nullable, so that its failure leaves the rest of the response standing.
    async fn hello(&self) -> Option<&str> {
        Some("hi")
    }
}

struct Farewell;

#[Object(name = "Query")]
impl Farewell {
    async fn goodbye(&self) -> &str {
        "bye"
    }
}

fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

fn message(response: &Value) -> &str {
    response["errors"][0]["message"].as_str().unwrap_or("")
}

async fn circuit_gauge(router: &crate::helpers::RouterClient) -> Option<String> {
    let metrics = router.http.get(router.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    metrics
        .lines()
        .find(|l| l.starts_with("subgraph_circuit_state{") && l.contains("subgraph=\"greeting\""))
        .and_then(|l| l.rsplit(' ').next())
        .map(str::to_owned)
}

#[tokio::test]
async fn the_circuit_opens_fails_fast_probes_and_closes_while_the_rest_keeps_answering() {
    let greeting =
        spawn_subgraph(Schema::build(Greeting, EmptyMutation, EmptySubscription).enable_federation().finish()).await;
    let farewell =
        spawn_subgraph(Schema::build(Farewell, EmptyMutation, EmptySubscription).enable_federation().finish()).await;
    let target = greeting.url.trim_start_matches("http://").trim_end_matches("/graphql").parse().unwrap();
    let gate = TcpGate::start(target, true).await;
    let gated_url = format!("http://127.0.0.1:{}/graphql", gate.port);
    let supergraph = SupergraphFile::new(&compose(&[
        ("greeting", greeting.sdl.clone(), gated_url),
        ("farewell", farewell.sdl.clone(), farewell.url.clone()),
    ]));
    let router = spawn_router(
        supergraph.path.clone(),
        &[
            ("CIRCUIT_BREAKER_FAILURES", "2".into()),
            ("CIRCUIT_BREAKER_COOL_DOWN", "300ms".into()),
            ("SUBGRAPH_RETRIES", "0".into()),
        ],
    )
    .await;
    let both = "{ hello goodbye }";
    assert_eq!(router.graphql(None, both, json!({})).await, json!({ "data": { "hello": "hi", "goodbye": "bye" } }));

    // Outage: two failures open the circuit; the other subgraph's field still comes back.
    gate.close();
    for _ in 0..2 {
        let partial = router.graphql(None, both, json!({})).await;
        assert_eq!(code(&partial), "SUBGRAPH_UNAVAILABLE", "{partial}");
        assert_eq!(partial["data"]["goodbye"], "bye", "{partial}");
        assert!(!message(&partial).contains("failing fast"), "{partial}");
    }
    let fast = router.graphql(None, both, json!({})).await;
    assert!(message(&fast).contains("failing fast"), "open: no call is made: {fast}");
    assert_eq!(fast["data"]["goodbye"], "bye");
    assert_eq!(circuit_gauge(&router).await.as_deref(), Some("2"), "open");

    // Still down when the probe goes: it fails, and the circuit opens again.
    let reopened_after_probe = Arc::new(AtomicUsize::new(0));
    eventually("a failed probe reopens the circuit", || {
        let (router, seen) = (&router, reopened_after_probe.clone());
        async move {
            let response = router.graphql(None, both, json!({})).await;
            // A probe shows as a plain failure; the next request fails fast again.
            if !message(&response).contains("failing fast") {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            seen.load(Ordering::SeqCst) > 0 && message(&response).contains("failing fast")
        }
    })
    .await;

    // Back up: after the cool-down one probe succeeds and the circuit closes.
    gate.open();
    eventually("the circuit closes after a successful probe", || async {
        router.graphql(None, both, json!({})).await == json!({ "data": { "hello": "hi", "goodbye": "bye" } })
    })
    .await;
    assert_eq!(circuit_gauge(&router).await.as_deref(), Some("0"), "closed");
    assert_eq!(router.graphql(None, both, json!({})).await["data"]["hello"], "hi");
}

struct Poke;

#[Object(name = "Mutation")]
impl Poke {
    async fn poke(&self) -> bool {
        true
    }
}

/// A subgraph that answers 503 to its first request, then well.
async fn flaky_subgraph() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::post(move |body: String| {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy".to_owned());
                }
                let data = if body.contains("poke") { json!({ "poke": true }) } else { json!({ "hello": "hi" }) };
                (axum::http::StatusCode::OK, json!({ "data": data }).to_string())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

#[tokio::test]
async fn queries_are_retried_and_mutations_are_not() {
    let sdl = Schema::build(Greeting, Poke, EmptySubscription).enable_federation().finish();
    let sdl = sdl.sdl_with_options(async_graphql::SDLExportOptions::new().federation());

    let (url, calls) = flaky_subgraph().await;
    let supergraph = SupergraphFile::new(&compose(&[("greeting", sdl.clone(), url)]));
    let router = spawn_router(supergraph.path.clone(), &[("SUBGRAPH_RETRY_BACKOFF", "1ms".into())]).await;
    assert_eq!(router.graphql(None, "{ hello }", json!({})).await, json!({ "data": { "hello": "hi" } }));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one failure, one retry");

    let (url, calls) = flaky_subgraph().await;
    let supergraph = SupergraphFile::new(&compose(&[("greeting", sdl, url)]));
    let router = spawn_router(supergraph.path.clone(), &[("SUBGRAPH_RETRY_BACKOFF", "1ms".into())]).await;
    let mutation = router.graphql(None, "mutation { poke }", json!({})).await;
    assert_eq!(code(&mutation), "SUBGRAPH_UNAVAILABLE", "{mutation}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a mutation is sent once");
}
