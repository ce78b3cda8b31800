use std::time::Duration;

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use serde_json::{Value, json};

use kit::testing::{TestIssuer, eventually};
use uuid::Uuid;

use crate::helpers::{RouterClient, SupergraphFile, compose, repo_path, spawn_router, spawn_subgraph};

struct Greeting;

#[Object(name = "Query")]
impl Greeting {
    async fn hello(&self) -> &str {
        "hi"
    }
}

struct Farewell;

#[Object(name = "Query")]
impl Farewell {
    async fn goodbye(&self) -> &str {
        "bye"
    }
}

#[tokio::test]
async fn allow_listed_headers_reach_subgraphs_and_others_do_not() {
    let subgraph =
        spawn_subgraph(Schema::build(Greeting, EmptyMutation, EmptySubscription).enable_federation().finish()).await;
    let supergraph = SupergraphFile::new(&compose(&[("greeting", subgraph.sdl.clone(), subgraph.url.clone())]));
    let issuer = TestIssuer::start().await;
    let router = spawn_router(supergraph.path.clone(), &[("JWKS_URL", issuer.jwks_url.clone())]).await;
    let token = issuer.token(Uuid::new_v4());

    let response = router
        .http
        .post(router.url("/graphql"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-request-id", "req-42")
        .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .header("x-internal-user", "admin")
        .header("cookie", "session=secret")
        .header("x-taskgraph-router-secret", "a client's guess")
        .json(&json!({ "query": "{ hello }" }))
        .send()
        .await
        .unwrap();

    assert_eq!(response.headers()["x-request-id"], "req-42");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["hello"], "hi", "{body}");
    let seen = subgraph.headers();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].get("authorization"), Some(&format!("Bearer {token}")));
    assert_eq!(seen[0].get("x-request-id").map(String::as_str), Some("req-42"));
    assert!(seen[0].contains_key("traceparent"));
    assert!(!seen[0].contains_key("x-internal-user"), "unlisted headers stay at the router");
    assert!(!seen[0].contains_key("cookie"));
    let secret = seen[0].get("x-taskgraph-router-secret").map(String::as_str);
    assert_eq!(secret, Some(kit::testing::ROUTER_SECRET), "the router's own secret, never a client's");

    // Without one, the router makes up a request id and passes that on.
    let response = router.post(None, json!({ "query": "{ hello }" })).await;
    let generated = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(Uuid::parse_str(&generated).is_ok(), "{generated}");
    assert_eq!(subgraph.headers()[1].get("x-request-id"), Some(&generated));
}

#[tokio::test]
async fn bad_tokens_are_refused_at_the_edge_and_no_subgraph_is_called() {
    let subgraph =
        spawn_subgraph(Schema::build(Greeting, EmptyMutation, EmptySubscription).enable_federation().finish()).await;
    let supergraph = SupergraphFile::new(&compose(&[("greeting", subgraph.sdl.clone(), subgraph.url.clone())]));
    let issuer = TestIssuer::start().await;
    let router = spawn_router(supergraph.path.clone(), &[("JWKS_URL", issuer.jwks_url.clone())]).await;
    let user = Uuid::new_v4();
    let forged = {
        let other = TestIssuer::start().await;
        other.token(user)
    };

    for token in ["not-a-jwt".to_owned(), issuer.expired_token(user), issuer.token_with(user, 600, "refresh"), forged] {
        let response = router.post(Some(&token), json!({ "query": "{ hello }" })).await;
        assert_eq!(response.status(), 401, "{token}");
        assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
        assert!(body.get("data").is_none());
    }
    let batch = router.post(Some("not-a-jwt"), json!([{ "query": "{ hello }" }])).await;
    assert_eq!(batch.status(), 401, "a batch is refused whole");
    assert!(subgraph.requests().is_empty(), "no subgraph saw a refused request");

    let anonymous = router.graphql(None, "{ hello }", json!({})).await;
    assert_eq!(anonymous["data"]["hello"], "hi", "no token: anonymous, subgraphs decide");
    let valid = router.graphql(Some(&issuer.token(user)), "{ hello }", json!({})).await;
    assert_eq!(valid["data"]["hello"], "hi");
}

#[tokio::test]
async fn a_changed_supergraph_is_served_and_a_broken_one_refused() {
    let first =
        spawn_subgraph(Schema::build(Greeting, EmptyMutation, EmptySubscription).enable_federation().finish()).await;
    let second =
        spawn_subgraph(Schema::build(Farewell, EmptyMutation, EmptySubscription).enable_federation().finish()).await;
    let supergraph = SupergraphFile::new(&compose(&[("greeting", first.sdl.clone(), first.url.clone())]));
    let router = spawn_router(supergraph.path.clone(), &[]).await;
    let goodbye = || async { router.graphql(None, "{ goodbye }", json!({})).await };
    assert_eq!(goodbye().await["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");

    std::fs::write(&supergraph.path, "this is not a supergraph").unwrap();
    a_reload_refused(&router).await;
    let still = router.graphql(None, "{ __typename }", json!({})).await;
    assert_eq!(still["data"]["__typename"], "Query", "the old schema stays in service: {still}");

    let both = compose(&[
        ("greeting", first.sdl.clone(), first.url.clone()),
        ("farewell", second.sdl.clone(), second.url.clone()),
    ]);
    std::fs::write(&supergraph.path, both).unwrap();
    eventually("the new supergraph to serve goodbye", || async { goodbye().await["data"]["goodbye"] == "bye" }).await;
}

#[tokio::test]
async fn a_supergraph_naming_a_subgraph_the_router_cannot_call_is_refused() {
    let subgraph =
        spawn_subgraph(Schema::build(Greeting, EmptyMutation, EmptySubscription).enable_federation().finish()).await;
    let supergraph = SupergraphFile::new(&compose(&[("greeting", subgraph.sdl.clone(), subgraph.url.clone())]));
    let router = spawn_router(supergraph.path.clone(), &[]).await;

    // Subgraphs are called over plain HTTP (TLS ends at the edge, e.g. nginx or a mesh).
    let https = subgraph.url.replacen("http://", "https://", 1);
    std::fs::write(&supergraph.path, compose(&[("greeting", subgraph.sdl.clone(), https)])).unwrap();
    a_reload_refused(&router).await;
    let still = router.graphql(None, "{ hello }", json!({})).await;
    assert_eq!(still["data"]["hello"], "hi", "the old schema and URL stay in service: {still}");
}

/// Waits until the router has counted a refused supergraph reload.
async fn a_reload_refused(router: &RouterClient) {
    eventually("the new supergraph file to be refused", || async {
        let metrics = router.http.get(router.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
        metrics.lines().any(|l| l.starts_with("supergraph_reloads_total{outcome=\"refused\"}"))
    })
    .await;
}

#[tokio::test]
async fn metrics_count_operations_plan_cache_and_subgraph_calls() {
    let subgraph =
        spawn_subgraph(Schema::build(Farewell, EmptyMutation, EmptySubscription).enable_federation().finish()).await;
    let supergraph = SupergraphFile::new(&compose(&[("farewell", subgraph.sdl.clone(), subgraph.url.clone())]));
    let router = spawn_router(supergraph.path.clone(), &[]).await;

    for _ in 0..2 {
        router.graphql(None, "query Bye { goodbye }", json!({})).await;
    }

    let metrics = router.http.get(router.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    for expected in [
        "graphql_operations_total{service=\"router\",operation_type=\"query\",outcome=\"success\"}",
        "graphql_operations_by_name_total{service=\"router\",operation_name=\"Bye\"}",
        // Registered (at 0) before anything happened to them; other tests of
        // this process share the registry, so their values are not known here.
        "graphql_errors_total{service=\"router\",code=\"INTERNAL\"} ",
        "rate_limited_total{policy=\"login\"} ",
        "subgraph_circuit_state{subgraph=\"farewell\"} ",
        "subgraph_retries_total{subgraph=\"farewell\"} ",
        "subgraph_fetches_deduplicated_total{subgraph=\"farewell\"} ",
        "router_requests_deduplicated_total ",
        "# HELP subgraph_request_duration_seconds ",
        "query_plan_cache_total{result=\"hit\"}",
        "query_plan_cache_total{result=\"miss\"}",
        "subgraph_request_duration_seconds_bucket{subgraph=\"farewell\",outcome=\"success\"",
        // Microsecond buckets: the router's own time is far below a millisecond.
        "router_overhead_seconds_bucket{le=\"0.00001\"}",
        "graphql_operation_duration_seconds_bucket",
        "http_request_duration_seconds_bucket{service=\"router\",method=\"POST\",route=\"/graphql\"",
    ] {
        assert!(metrics.contains(expected), "missing {expected} in\n{metrics}");
    }
    let ready = router.http.get(router.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let _ = repo_path("schema");
}

struct Slow;

#[Object(name = "Query")]
impl Slow {
    /// Answers long after the router's per-subgraph timeout.
    async fn slow(&self) -> Option<&str> {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Some("late")
    }
}

#[tokio::test]
async fn a_slow_subgraph_times_out_per_its_own_setting_and_the_rest_still_answers() {
    let slow = spawn_subgraph(Schema::build(Slow, EmptyMutation, EmptySubscription).enable_federation().finish()).await;
    let fast =
        spawn_subgraph(Schema::build(Farewell, EmptyMutation, EmptySubscription).enable_federation().finish()).await;
    let supergraph = SupergraphFile::new(&compose(&[
        ("slow", slow.sdl.clone(), slow.url.clone()),
        ("farewell", fast.sdl.clone(), fast.url.clone()),
    ]));
    let router = spawn_router(supergraph.path.clone(), &[("SUBGRAPH_SLOW_TIMEOUT", "100ms".to_owned())]).await;

    let response = router.graphql(None, "{ slow goodbye }", json!({})).await;

    assert_eq!(response["data"], json!({ "slow": null, "goodbye": "bye" }), "{response}");
    assert_eq!(response["errors"][0]["extensions"]["code"], "SUBGRAPH_TIMEOUT");
    assert_eq!(response["errors"][0]["extensions"]["serviceName"], "slow");
    assert_eq!(response["errors"][0]["path"], json!(["slow"]));
}

#[tokio::test]
async fn ready_stays_200_with_a_subgraph_down_and_reports_each_subgraph_and_its_circuit() {
    let standing =
        spawn_subgraph(Schema::build(Greeting, EmptyMutation, EmptySubscription).enable_federation().finish()).await;
    let unplugged =
        spawn_subgraph(Schema::build(Farewell, EmptyMutation, EmptySubscription).enable_federation().finish()).await;
    let supergraph = SupergraphFile::new(&compose(&[
        ("standing", standing.sdl.clone(), standing.url.clone()),
        // Nothing listens on port 1.
        ("unplugged", unplugged.sdl.clone(), "http://127.0.0.1:1/graphql".to_owned()),
    ]));
    let router = spawn_router(supergraph.path.clone(), &[("CIRCUIT_BREAKER_FAILURES", "1".to_owned())]).await;
    let failed = router.graphql(None, "{ goodbye }", json!({})).await;
    assert_eq!(failed["errors"][0]["extensions"]["code"], "SUBGRAPH_UNAVAILABLE", "{failed}");

    let ready = router.http.get(router.url("/health/ready")).send().await.unwrap();

    assert_eq!(ready.status(), 200, "one subgraph down takes no router out of rotation");
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["checks"]["supergraph"]["status"], "up", "{body}");
    let subgraphs = &body["checks"]["subgraphs"];
    assert_eq!((&subgraphs["status"], &subgraphs["required"]), (&json!("down"), &json!(false)), "{body}");
    assert_eq!(subgraphs["error"], "down: unplugged", "{body}");
    let down = &subgraphs["unplugged"];
    assert_eq!((&down["status"], &down["circuit"]), (&json!("down"), &json!("open")), "{body}");
    assert!(down["lastSuccessAt"].is_null() && down["error"].is_string(), "{body}");
    let up = &subgraphs["standing"];
    assert_eq!((&up["status"], &up["circuit"]), (&json!("up"), &json!("closed")), "{body}");
    assert!(up["lastSuccessAt"].is_string() && up["latencyMs"].is_number(), "{body}");
    let metrics = router.http.get(router.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    for series in [
        "subgraph_up{subgraph=\"unplugged\"} 0",
        "subgraph_up{subgraph=\"standing\"} 1",
        "subgraph_circuit_state{subgraph=\"unplugged\"} 2",
    ] {
        assert!(metrics.lines().any(|l| l == series), "missing {series} in\n{metrics}");
    }
}
