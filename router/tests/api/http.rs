use serde_json::{Value, json};

use crate::helpers::{repo_path, spawn_auth, spawn_router};

#[tokio::test]
async fn request_errors_have_no_data_and_stable_codes() {
    let auth = spawn_auth().await;
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[("SUBGRAPH_AUTH_URL", format!("{}/graphql", auth.running.address))],
    )
    .await;

    let parse = router.graphql(None, "{ me { ", json!({})).await;
    assert_eq!(parse["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED", "{parse}");
    assert!(parse.get("data").is_none());

    let invalid = router.graphql(None, "{ me { nope } }", json!({})).await;
    assert_eq!(invalid["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{invalid}");
    assert!(invalid["errors"][0]["locations"].is_array());
    assert!(invalid.get("data").is_none());

    let hidden = router.graphql(None, "{ _entities(representations: []) { __typename } }", json!({})).await;
    assert_eq!(
        hidden["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "federation internals stay hidden: {hidden}"
    );

    let missing_var = router.graphql(None, "mutation($e: String!) { logout(refreshToken: $e) }", json!({})).await;
    assert_eq!(missing_var["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{missing_var}");
    let null_despite_default =
        router.graphql(None, "mutation($e: String! = \"x\") { logout(refreshToken: $e) }", json!({ "e": null })).await;
    assert_eq!(null_despite_default["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{null_despite_default}");
    let defaulted = router.graphql(None, "mutation($e: String! = \"x\") { logout(refreshToken: $e) }", json!({})).await;
    assert_eq!(defaulted["data"]["logout"], false, "a missing value takes the default: {defaulted}");

    let unknown_op = router
        .post(None, json!({ "query": "query A { __typename } query B { __typename }", "operationName": "C" }))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(unknown_op["errors"][0]["extensions"]["code"], "OPERATION_RESOLUTION_FAILURE");
}

#[tokio::test]
async fn get_batches_media_types_and_graphiql() {
    let auth = spawn_auth().await;
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[("SUBGRAPH_AUTH_URL", format!("{}/graphql", auth.running.address))],
    )
    .await;

    let get = router
        .http
        .get(router.url("/graphql?query=%7B__typename%7D"))
        .header("apollo-require-preflight", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    for (name, value) in
        [("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"), ("referrer-policy", "no-referrer")]
    {
        assert_eq!(get.headers()[name], value, "{name}");
    }
    assert_eq!(get.json::<Value>().await.unwrap(), json!({ "data": { "__typename": "Query" } }));

    let mutation_over_get = router
        .http
        .get(router.url("/graphql?query=mutation%7BlogoutAll%7D"))
        .header("graphql-preflight", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(mutation_over_get.status(), 405);

    // A plain GET is what a cross-site <img> or link sends: refused before it runs.
    for preflight in [None, Some("")] {
        let mut simple = router.http.get(router.url("/graphql?query=%7B__typename%7D"));
        if let Some(value) = preflight {
            simple = simple.header("apollo-require-preflight", value);
        }
        let refused = simple.send().await.unwrap();
        assert_eq!(refused.status(), 400, "preflight header {preflight:?}");
        let body = refused.json::<Value>().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "CSRF_SUSPECTED", "{body}");
        assert!(body.get("data").is_none());
    }

    let batch = router
        .post(None, json!([{ "query": "{ __typename }" }, { "query": "{ me { id } }" }, { "query": "{ nope }" }]))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(batch[0]["data"]["__typename"], "Query", "{batch}");
    assert_eq!(batch[1]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(batch[2]["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");

    let strict = router
        .http
        .post(router.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": "{ nope }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(strict.status(), 400);
    assert_eq!(strict.headers()["content-type"], "application/graphql-response+json");

    let page = router.http.get(router.url("/graphql")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("GraphiQL"));

    let not_json = router.http.post(router.url("/graphql")).body("{}").send().await.unwrap();
    assert_eq!(not_json.status(), 415);
}

#[tokio::test]
async fn a_subgraph_that_is_down_gives_errors_with_paths_not_a_crash() {
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[("SUBGRAPH_AUTH_URL", "http://127.0.0.1:1/graphql".to_owned())],
    )
    .await;

    let response = router.graphql(None, "{ me { id } }", json!({})).await;

    assert_eq!(response["errors"][0]["extensions"]["code"], "SUBGRAPH_UNAVAILABLE", "{response}");
    assert_eq!(response["errors"][0]["path"], json!(["me"]));
    assert_eq!(response["data"], json!({ "me": null }));
}

/// GraphiQL's introspection query (graphql-js `getIntrospectionQuery`, all options on).
const GRAPHIQL_INTROSPECTION: &str = include_str!("graphiql_introspection.graphql");

#[tokio::test]
async fn operation_limits_stop_abuse_and_let_graphiql_through() {
    // Every limit at its default, the cost of introspection included.
    let router = spawn_router(repo_path("schema/supergraph.graphql"), &[]).await;

    let introspection = router.graphql(None, GRAPHIQL_INTROSPECTION, json!({})).await;
    assert!(introspection.get("errors").is_none(), "GraphiQL must work: {introspection}");
    assert!(introspection["data"]["__schema"]["types"].as_array().is_some_and(|t| t.len() > 20), "{introspection}");

    // One deeper than the subgraphs allow (16): the router refuses it too.
    let deep = format!("{{ {}__typename{} }}", "me { ".repeat(16), " }".repeat(16));
    let aliases = format!("{{ {} }}", (0..31).map(|i| format!("a{i}: __typename")).collect::<Vec<_>>().join(" "));
    let directives =
        "{ __typename @skip(if: false) @include(if: true) @skip(if: false) @include(if: true) @skip(if: false) }";
    let fan_out = "{ tasks(first: 100) { edges { node { owner { tasks(first: 100) { edges { node { id } } } } } } } }";
    let long = format!("{{ __typename }}{}", " ".repeat(32 * 1024));
    for query in [deep.as_str(), aliases.as_str(), directives, fan_out, long.as_str()] {
        let refused = router.graphql(None, query, json!({})).await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
        assert!(refused.get("data").is_none(), "refused before execution: {refused}");
    }

    let batch: Vec<Value> = (0..33).map(|_| json!({ "query": "{ __typename }" })).collect();
    let too_many = router.post(None, Value::Array(batch)).await;
    assert_eq!(too_many.status(), 400);
    let body: Value = too_many.json().await.unwrap();
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("MAX_BATCH"), "{body}");
}

#[tokio::test]
async fn cors_answers_listed_origins_only_with_credentials() {
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[("CORS_ALLOWED_ORIGINS", "https://app.example.com, http://localhost:5173/".to_owned())],
    )
    .await;
    let preflight = |origin: &'static str| {
        router
            .http
            .request(reqwest::Method::OPTIONS, router.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type, authorization")
            .send()
    };

    for origin in ["https://app.example.com", "http://localhost:5173"] {
        let allowed = preflight(origin).await.unwrap();
        assert!(allowed.status().is_success(), "{origin}: {}", allowed.status());
        assert_eq!(allowed.headers()["access-control-allow-origin"], origin);
        assert_eq!(allowed.headers()["access-control-allow-credentials"], "true");
        let methods = allowed.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
        assert!(methods.contains("POST"), "{methods}");
    }
    let foreign = preflight("https://evil.example").await.unwrap();
    assert!(foreign.headers().get("access-control-allow-origin").is_none(), "an unlisted origin gets nothing");

    let simple = router
        .http
        .post(router.url("/graphql"))
        .header("origin", "https://app.example.com")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(simple.headers()["access-control-allow-origin"], "https://app.example.com");
    assert!(simple.headers()["vary"].to_str().unwrap().contains("origin"), "caches must key on the origin");
}

#[tokio::test]
async fn a_json_body_over_its_limit_is_refused_whether_declared_or_streamed() {
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[("BODY_LIMIT_BYTES", "2048".into()), ("SUBGRAPH_AUTH_URL", "http://127.0.0.1:9/graphql".into())],
    )
    .await;
    let padding = " ".repeat(4096);
    let big = format!(r#"{{"query":"{{ __typename }}{padding}"}}"#);

    let declared =
        router.http.post(router.url("/graphql")).header("content-type", "application/json").body(big.clone());
    let declared = declared.send().await.unwrap();
    assert_eq!(declared.status(), 413);
    let body: Value = declared.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE", "{body}");

    // No Content-Length: counted as it arrives.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.as_bytes().chunks(512).map(|c| Ok(c.to_vec())).collect();
    let streamed = router
        .http
        .post(router.url("/graphql"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 413);

    let small = router.graphql(None, "{ __typename }", json!({})).await;
    assert_eq!(small, json!({ "data": { "__typename": "Query" } }));
}
