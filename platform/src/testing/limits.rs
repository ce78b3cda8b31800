//! The abusive documents every GraphQL endpoint of ours must refuse under the
//! default document limits (`platform::config::QueryLimits`), the allowed ones it
//! must still serve, and one check of a live service against them all. The
//! documents use only what every federation subgraph has (`Query`,
//! `__typename`, `_service`, introspection), so each subgraph's tests call the
//! same check on its own port.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Far above what a refusal costs, far below what the abuse costs unrefused (minutes).
const GENEROUS: Duration = Duration::from_secs(5);

/// `{ __schema { ...F<levels> } }` where F0 is `__typename` and each F(n)
/// spreads F(n-1) twice: 2^levels fields from about 50 bytes a level.
pub fn doubling_fragments(levels: usize) -> String {
    let fragments: String =
        (1..=levels).map(|n| format!(" fragment F{n} on __Schema {{ ...F{m} ...F{m} }}", m = n - 1)).collect();
    format!("{{ __schema {{ ...F{levels} }} }} fragment F0 on __Schema {{ __typename }}{fragments}")
}

/// An introspection query `depth` fields deep (the `ofType` chain makes any depth).
pub fn query_of_depth(depth: usize) -> String {
    // __schema > queryType > fields > type > ofType... > name
    let of_types = depth.saturating_sub(5);
    format!(
        "{{ __schema {{ queryType {{ fields {{ type {{ {}name{} }} }} }} }} }}",
        "ofType { ".repeat(of_types),
        " }".repeat(of_types)
    )
}

/// Requests refused with BAD_USER_INPUT, each with the setting its message names.
pub fn refused_requests() -> Vec<(&'static str, Value, &'static str)> {
    let batch = |n: usize| Value::Array(vec![json!({ "query": "{ __typename }" }); n]);
    vec![
        ("doubling fragments", json!({ "query": doubling_fragments(30) }), "MAX_QUERY_FIELDS"),
        (
            "5,000 repeated fields",
            json!({ "query": format!("{{ _service {{ {}}} }}", "sdl ".repeat(5_000)) }),
            "MAX_QUERY_FIELDS",
        ),
        ("depth 17", json!({ "query": query_of_depth(17) }), "MAX_QUERY_DEPTH"),
        ("a batch of 33", batch(33), "MAX_BATCH"),
        ("a token flood", json!({ "query": format!("{{ {}}}", "a ".repeat(10_000)) }), "MAX_QUERY_TOKENS"),
        (
            "32 KiB and one byte",
            json!({ "query": format!("{{ __typename }}{}", " ".repeat(32 * 1024 - 13)) }),
            "MAX_QUERY_LENGTH",
        ),
        // Without the check, the parser's recursion overflows the thread's stack: the process aborts.
        (
            "3,000 nested lists",
            json!({ "query": format!("{{ __typename(a: {}1{}) }}", "[".repeat(3_000), "]".repeat(3_000)) }),
            "fixed",
        ),
    ]
}

/// Requests at the limits that are served without errors.
pub fn allowed_requests() -> Vec<(&'static str, Value)> {
    vec![
        ("depth 16", json!({ "query": query_of_depth(16) })),
        ("a batch of 32", Value::Array(vec![json!({ "query": "{ __typename }" }); 32])),
        // async-graphql's own complexity limit counts these alike: it must let them through too.
        ("1,000 fields", json!({ "query": format!("{{ __schema {{ {}}} }}", "__typename ".repeat(999)) })),
        // 512 fields through 9 levels of fragments: expensive, but allowed.
        ("doubling fragments, 512 fields", json!({ "query": doubling_fragments(9) })),
    ]
}

/// Checks the service at `base` (e.g. `http://127.0.0.1:4001`) against every
/// document above, on its `/graphql`: each refused one answered quickly with
/// BAD_USER_INPUT naming its limit, each allowed one answered without errors,
/// and `/health/live` answering promptly while allowed and refused documents
/// keep arriving.
pub async fn assert_document_limits(client: &reqwest::Client, base: &str) {
    let graphql = format!("{base}/graphql");
    for (what, body, setting) in refused_requests() {
        let started = Instant::now();
        let answer = post(client, &graphql, &body).await;
        assert!(started.elapsed() < GENEROUS, "{what} took {:?}", started.elapsed());
        let error = &answer["errors"][0];
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{what}: {answer}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("({setting})")), "{what}: {message}");
        assert!(answer.get("data").is_none_or(Value::is_null), "{what}: {answer}");
    }
    for (what, body) in allowed_requests() {
        let answer = post(client, &graphql, &body).await;
        let answers = answer.as_array().cloned().unwrap_or_else(|| vec![answer.clone()]);
        for answer in answers {
            assert!(answer.get("errors").is_none() && answer["data"].is_object(), "{what}: {answer}");
        }
    }
    assert_live_while_documents_arrive(client, base).await;
}

/// `/health/live` answers within a generous bound while clients keep sending
/// the most expensive allowed document and refused ones.
async fn assert_live_while_documents_arrive(client: &reqwest::Client, base: &str) {
    let graphql = format!("{base}/graphql");
    let mut bodies: Vec<Value> = refused_requests().into_iter().map(|(_, body, _)| body).collect();
    bodies.push(Value::Array(vec![json!({ "query": doubling_fragments(9) }); 32]));
    let senders: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let (client, graphql) = (client.clone(), graphql.clone());
            tokio::spawn(async move {
                for _ in 0..10 {
                    let _ = client.post(&graphql).json(&body).send().await;
                }
            })
        })
        .collect();
    for _ in 0..10 {
        let started = Instant::now();
        let live = client.get(format!("{base}/health/live")).send().await.expect("health request sent");
        assert!(live.status().is_success(), "/health/live answered {}", live.status());
        assert!(started.elapsed() < GENEROUS, "/health/live took {:?}", started.elapsed());
    }
    for sender in senders {
        sender.await.expect("sender task");
    }
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    let response = client.post(url).json(body).send().await.expect("request sent");
    response.json().await.expect("a JSON answer")
}
