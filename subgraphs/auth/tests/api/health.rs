use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn live_answers_without_a_token() {
    let app = spawn_app().await;
    let response = app.get("/health/live").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "status": "live", "service": "auth" }));
}

#[tokio::test]
async fn ready_checks_postgres_and_rabbitmq() {
    let app = spawn_app().await;
    app.eventually("the relay to connect", || async {
        let body: Value = app.get("/health/ready").await.json().await.unwrap();
        body["checks"]["rabbitmq"]["status"] == "up"
    })
    .await;

    let response = app.get("/health/ready").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["postgres"]["status"], "up");
}

#[tokio::test]
async fn ready_is_503_naming_postgres_when_it_is_gone() {
    let app = spawn_app().await;
    // End this app's database sessions and forbid new ones.
    let db: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&app.pool).await.unwrap();
    let admin = sqlx::PgPool::connect(&format!("{}/postgres", crate::helpers::postgres_base())).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE \"{db}\" WITH ALLOW_CONNECTIONS false")))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&db)
        .execute(&admin)
        .await
        .unwrap();

    let response = app.get("/health/ready").await;

    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["postgres"]["status"], "down");
    sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE \"{db}\" WITH ALLOW_CONNECTIONS true")))
        .execute(&admin)
        .await
        .unwrap();
}

#[tokio::test]
async fn ready_reports_an_unreachable_broker_as_degraded() {
    // Nothing listens on port 1.
    let app = spawn_app_with(|env| env.set("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:1/%2f")).await;

    let response = app.get("/health/ready").await;

    assert_eq!(response.status(), 200, "the outbox holds events meanwhile");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["rabbitmq"]["status"], "down");
}

#[tokio::test]
async fn metrics_record_route_templates_and_process_figures() {
    let app = spawn_app().await;
    app.graphql(None, "{ __typename }", json!({})).await;
    app.get("/health/live").await;

    let response = app.get_admin("/metrics").await;

    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let graphql_line = body
        .lines()
        .find(|l| {
            l.starts_with("http_request_duration_seconds_bucket")
                && l.contains("route=\"/graphql\"")
                && l.contains("le=\"0.001\"")
        })
        .unwrap_or_else(|| panic!("no /graphql histogram with a 1 ms bucket in:\n{body}"));
    assert!(
        graphql_line.contains("service=\"auth\"") && graphql_line.contains("status_code=\"200\""),
        "{graphql_line}"
    );
    assert!(!body.contains("route=\"/health/live\""), "probes are not measured");
    assert!(body.contains("process_resident_memory_bytes "));
    assert!(body.contains("process_cpu_seconds_total "));
    assert!(body.contains("graphql_operations_total{service=\"auth\",operation_type=\"query\",outcome=\"success\"}"));
    // What dashboards and alerts read exists before anything happened to it.
    for series in [
        "graphql_errors_total{service=\"auth\",code=\"INTERNAL\"}",
        "http_requests_in_flight{service=\"auth\"}",
        "db_pool_max_connections{service=\"auth\"}",
        "events_published_total{routing_key=\"user.deleted\"}",
        "auth_bcrypt_hashes{state=\"running\"}",
    ] {
        assert!(body.contains(series), "no {series} in:\n{body}");
    }
}

#[tokio::test]
async fn every_metric_has_help_text() {
    let app = spawn_app().await;
    app.graphql(None, "{ __typename }", json!({})).await;

    let body = app.get_admin("/metrics").await.text().await.unwrap();

    let described: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("# HELP ")?.split(' ').next()).collect();
    for typed in body.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()) {
        assert!(described.contains(&typed), "{typed} has no HELP text in:\n{body}");
    }
}

#[tokio::test]
async fn metrics_are_served_on_the_admin_listener_only_and_health_on_both() {
    let app = spawn_app().await;

    let public = app.get("/metrics").await;
    assert_eq!(public.status(), 404, "the public port does not serve /metrics");
    for path in ["/health/live", "/health/ready"] {
        assert_eq!(app.get(path).await.status(), 200, "{path} on the public port");
        assert_eq!(app.get_admin(path).await.status(), 200, "{path} on the admin port");
    }
    assert_eq!(app.get_admin("/graphql").await.status(), 404, "the admin port serves no API");
}

#[tokio::test]
async fn admin_port_none_turns_the_admin_listener_off() {
    let app = spawn_app_with(|env| env.set("ADMIN_PORT", "none")).await;
    assert_eq!(app.admin_address, None);
    assert_eq!(app.get("/health/live").await.status(), 200);
}

#[tokio::test]
async fn request_ids_are_kept_or_made_and_always_echoed() {
    let app = spawn_app().await;

    let kept =
        app.client.get(format!("{}/health/live", app.address)).header("x-request-id", "abc-123").send().await.unwrap();
    let made = app.get("/health/live").await;
    let refused =
        app.client.get(format!("{}/health/live", app.address)).header("x-request-id", "evil\tid").send().await.unwrap();

    assert_eq!(kept.headers()["x-request-id"], "abc-123");
    let generated = made.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
    assert_ne!(refused.headers()["x-request-id"], "evil\tid");
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let app = spawn_app().await;
    let response = app.get("/nope").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not found");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = spawn_app_with(|env| env.set("BODY_LIMIT_BYTES", "2048")).await;
    let big = json!({ "query": format!("{{ __typename }} # {}", "x".repeat(4096)) });
    let response = app.post_graphql(None, big).await;
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn unreadable_bodies_are_request_errors_in_our_words() {
    let app = spawn_app().await;
    for (what, content_type, body) in kit::testing::unreadable_graphql_bodies() {
        let response = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        kit::testing::assert_request_error_in_our_words(what, response, 400).await;
    }
}

#[tokio::test]
async fn graphql_needs_the_routers_secret_while_keys_revocations_and_health_stay_public() {
    let app = spawn_app().await;
    let stranger = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", app.address);
    let query = json!({ "query": "{ __typename }" });

    let refused = stranger.post(url("/graphql")).json(&query).send().await.unwrap();
    let wrong = stranger
        .post(url("/graphql"))
        .header("x-taskgraph-router-secret", "not-the-router-secret-at-all-0123456789")
        .json(&query)
        .send()
        .await
        .unwrap();
    let accepted = app.post_graphql(None, query.clone()).await;

    for (what, response) in [("no secret", refused), ("a wrong secret", wrong)] {
        assert_eq!(response.status(), 403, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{what}: {body}");
    }
    assert_eq!(accepted.status(), 200);
    for public in ["/.well-known/jwks.json", "/.well-known/session-revocations", "/health/live", "/health/ready"] {
        let response = stranger.get(url(public)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{public} needs no secret");
    }
}
