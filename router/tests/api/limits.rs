//! Documents that would cost the router (and every subgraph) super-linear work
//! are refused cheaply, before validation; expensive documents that are allowed
//! are prepared off the async threads.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{RouterClient, repo_path, spawn_router};

/// Far longer than any refusal takes; far shorter than expanding 2^30 fields.
const PATIENCE: Duration = Duration::from_secs(10);

/// F1 spreads F0 twice, ..., F30 spreads F29 twice: 2^30 fields from about 1.5 KB of text.
fn fragment_bomb() -> String {
    let mut query = String::from("{ me { ...F30 } } fragment F0 on User { id }");
    for level in 1..=30 {
        let below = level - 1;
        query.push_str(&format!(" fragment F{level} on User {{ ...F{below} ...F{below} }}"));
    }
    query
}

/// Posts `query` and gives up after [`PATIENCE`].
async fn post_patiently(router: &RouterClient, query: &str) -> Value {
    let response = router
        .http
        .post(router.url("/graphql"))
        .timeout(PATIENCE)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("no answer within {PATIENCE:?}: {e}"));
    response.json().await.expect("JSON body")
}

#[tokio::test]
async fn fragment_bombs_field_floods_token_floods_and_default_pages_are_refused_before_validation() {
    // No subgraph runs: a refused document never reaches one.
    let router = spawn_router(repo_path("schema/supergraph.graphql"), &[]).await;
    let flood = format!("{{ me {{ {} }} }}", "id ".repeat(5000));
    let tokens = format!("query($x: [Int] = [{}]) {{ __typename }}", "1,".repeat(10_000));
    // Within the token limit, but deep enough to overflow a parser's stack (and abort the process).
    let brackets = format!("{{ me(l: {}1{}) {{ id }} }}", "[".repeat(3_000), "]".repeat(3_000));
    let nested_default_pages = "{ me { tasks { edges { node { owner { tasks { edges { node { owner { tasks { edges { node { id } } } } } } } } } } } } }";
    for (query, setting) in [
        (fragment_bomb().as_str(), "MAX_QUERY_FIELDS"),
        (flood.as_str(), "MAX_QUERY_FIELDS"),
        (tokens.as_str(), "MAX_QUERY_TOKENS"),
        (brackets.as_str(), "bracket nesting"),
        (nested_default_pages, "MAX_QUERY_COST"),
    ] {
        // Twice: the second answer comes from the cache of refusals, and says the same.
        for _ in 0..2 {
            let refused = post_patiently(&router, query).await;
            assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
            let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains(setting), "{setting}: {refused}");
            assert!(refused.get("data").is_none(), "refused before execution: {refused}");
        }
    }
}

/// `{ me { id id … } }` with enough ids to keep validation (quadratic in them) busy for seconds.
fn expensive_document() -> String {
    format!("{{ me {{ {} }} }}", "id ".repeat(10_000))
}

#[tokio::test]
async fn the_router_stays_responsive_and_times_out_while_expensive_documents_are_prepared() {
    // One thread runs this test and the router (#[tokio::test] is single-threaded): a document
    // prepared on it would stop everything else. Limits raised so that the documents are allowed.
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[
            ("MAX_QUERY_TOKENS", "100000".to_owned()),
            ("MAX_QUERY_FIELDS", "100000".to_owned()),
            ("MAX_QUERY_COST", "100000".to_owned()),
            ("REQUEST_TIMEOUT", "1s".to_owned()),
            ("PLANNING_TIMEOUT", "60s".to_owned()),
            ("PREPARE_CONCURRENCY", "1".to_owned()),
        ],
    )
    .await;
    let expensive: Vec<_> = (0..2)
        .map(|_| {
            let (http, url) = (router.http.clone(), router.url("/graphql"));
            tokio::spawn(async move {
                let started = Instant::now();
                let response = http.post(url).json(&json!({ "query": expensive_document() })).send().await;
                (response.map(|r| r.status()), started.elapsed())
            })
        })
        .collect();

    let mut probes = 0;
    while expensive.iter().any(|job| !job.is_finished()) || probes < 3 {
        let started = Instant::now();
        let live = router.http.get(router.url("/health/live")).timeout(PATIENCE).send().await.expect("answered");
        assert_eq!(live.status(), 200);
        assert!(started.elapsed() < Duration::from_secs(2), "/health/live took {:?}", started.elapsed());
        probes += 1;
    }
    for job in expensive {
        let (status, took) = job.await.expect("the request task ends");
        let status = status.expect("an answer");
        assert!(!status.is_success(), "REQUEST_TIMEOUT answers it: {status}");
        assert!(took < Duration::from_secs(4), "REQUEST_TIMEOUT (1s) fired after {took:?}");
    }
}
