//! Errors: subgraph field errors under entities get the client's path and keep
//! their code (batched fetches too); a stopped subgraph gives partial data and
//! SUBGRAPH_UNAVAILABLE; subgraph errors are masked unless `SUBGRAPH_ERRORS=pass`.

use axum::Json;
use serde_json::{Value, json};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::fixtures::{
    Gateway, Journal, ScriptedSubgraph, Store, accounts, assert_data, error_codes, keys, products, reviews,
};
use crate::helpers::TestSubgraph;

/// async-graphql leaves the representation's index out of `_entities` error
/// paths (`["_entities", "reviews", 0, "sentiment"]`). This proxy sends each
/// representation alone to the subgraph behind it and puts the index back
/// (`["_entities", 1, "reviews", 0, "sentiment"]`), as the federation spec has
/// it; in a batched request (`_e0: _entities(representations: $__batch_reps_0) …`)
/// likewise for each list, the alias leading the path.
struct IndexingProxy {
    url: String,
    _stop: DropGuard,
}

async fn forward(http: &reqwest::Client, backend: &str, body: &Value) -> Value {
    http.post(backend).json(body).send().await.expect("subgraph answers").json().await.expect("JSON")
}

/// The representation lists of a request, by variable name.
fn representation_lists(body: &Value) -> Vec<(String, Vec<Value>)> {
    let variables = body["variables"].as_object().into_iter().flatten();
    variables
        .filter(|(name, _)| *name == "representations" || name.starts_with("__batch_reps_"))
        .map(|(name, list)| (name.clone(), list.as_array().cloned().unwrap_or_default()))
        .collect()
}

async fn answer(http: reqwest::Client, backend: String, body: Value) -> Value {
    let lists = representation_lists(&body);
    if lists.is_empty() {
        return forward(&http, &backend, &body).await;
    }
    let (mut data, mut errors) = (serde_json::Map::new(), Vec::new());
    for (variable, representations) in &lists {
        for (index, representation) in representations.iter().enumerate() {
            // This representation alone; every other list empty.
            let mut alone = body.clone();
            for (other, _) in &lists {
                alone["variables"][other] = json!([]);
            }
            alone["variables"][variable] = json!([representation]);
            let answer = forward(&http, &backend, &alone).await;
            let answered = answer["data"].as_object().into_iter().flatten();
            let Some((key, entities)) =
                answered.into_iter().find(|(_, list)| list.as_array().is_some_and(|l| l.len() == 1))
            else {
                continue;
            };
            let list = data.entry(key.clone()).or_insert_with(|| json!([]));
            list.as_array_mut().expect("a list").push(entities[0].clone());
            for mut error in answer["errors"].as_array().cloned().unwrap_or_default() {
                if let Some(path) = error["path"].as_array_mut() {
                    path.insert(1, json!(index));
                }
                errors.push(error);
            }
        }
    }
    let mut response = json!({ "data": data });
    if !errors.is_empty() {
        response["errors"] = Value::Array(errors);
    }
    response
}

async fn spawn_indexing_proxy(backend: &TestSubgraph) -> IndexingProxy {
    let http = reqwest::Client::new();
    let backend = backend.url.clone();
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::post(move |Json(body): Json<Value>| async move { Json(answer(http, backend, body).await) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/graphql", listener.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    tokio::spawn(axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned()).into_future());
    IndexingProxy { url, _stop: stop.drop_guard() }
}

#[tokio::test]
async fn an_entity_field_error_gets_the_clients_path_and_keeps_its_code() {
    let journal = Journal::default();
    let products = products::spawn(&journal).await;
    let reviews = reviews::spawn(&journal).await;
    let proxy = spawn_indexing_proxy(&reviews).await;
    let parts =
        [("products", products.sdl.clone(), products.url.clone()), ("reviews", reviews.sdl.clone(), proxy.url.clone())];
    let gateway = Gateway::start_with_env(&parts, &passing()).await;

    let response = gateway.query("{ topProducts { name reviews { body sentiment } } }", json!({})).await;

    assert_eq!(
        response["data"],
        json!({ "topProducts": [
            { "name": "Table", "reviews": [
                { "body": "Love it!", "sentiment": "positive" },
                { "body": "Too expensive.", "sentiment": "negative" }
            ]},
            { "name": "Couch", "reviews": [{ "body": "Could be better.", "sentiment": null }] },
            { "name": "Chair", "reviews": [{ "body": "Prefer something else.", "sentiment": "negative" }] }
        ]}),
        "{response}"
    );
    let errors = response["errors"].as_array().unwrap_or_else(|| panic!("{response}"));
    assert_eq!(errors.len(), 1, "{response}");
    assert_eq!(errors[0]["message"], "sentiment analysis is down");
    assert_eq!(errors[0]["path"], json!(["topProducts", 1, "reviews", 0, "sentiment"]), "{response}");
    assert_eq!(errors[0]["extensions"]["code"], "SENTIMENT_UNAVAILABLE");
}

#[tokio::test]

async fn an_error_in_a_deduplicated_entity_is_reported_at_every_place_it_appears() {
    let journal = Journal::default();
    let accounts = accounts::spawn(&journal).await;
    let products = products::spawn(&journal).await;
    let reviews = reviews::spawn(&journal).await;
    let proxy = spawn_indexing_proxy(&accounts).await;
    let parts = [
        ("accounts", accounts.sdl.clone(), proxy.url.clone()),
        ("products", products.sdl.clone(), products.url.clone()),
        ("reviews", reviews.sdl.clone(), reviews.url.clone()),
    ];
    let gateway = Gateway::start_with_env(&parts, &passing()).await;

    // u1 wrote the first review of p1 and of p2: one representation, two places.
    let response = gateway.query("{ topProducts(first: 2) { reviews { author { name email } } } }", json!({})).await;

    let ada = json!({ "name": "Ada Lovelace", "email": null });
    assert_eq!(
        response["data"],
        json!({ "topProducts": [
            { "reviews": [{ "author": ada }, { "author": { "name": "Alan Turing", "email": "alan@example.com" } }] },
            { "reviews": [{ "author": ada }] }
        ]}),
        "{response}"
    );
    let paths: Vec<&Value> = response["errors"].as_array().into_iter().flatten().map(|e| &e["path"]).collect();
    assert_eq!(
        paths,
        [
            &json!(["topProducts", 0, "reviews", 0, "author", "email"]),
            &json!(["topProducts", 1, "reviews", 0, "author", "email"])
        ],
        "every null explained: {response}"
    );
    assert_eq!(error_codes(&response), [json!("EMAIL_PRIVATE"), json!("EMAIL_PRIVATE")]);
}

#[tokio::test]
async fn an_entity_error_whose_path_has_no_index_keeps_its_message_and_code() {
    let store = Store::start_with_env(&passing()).await;

    // async-graphql answers with the path ["_entities", "reviews", 0, "sentiment"].
    let response = store.query("{ topProducts { name reviews { body sentiment } } }", json!({})).await;

    assert_eq!(
        response["data"],
        json!({ "topProducts": [
            { "name": "Table", "reviews": [
                { "body": "Love it!", "sentiment": "positive" },
                { "body": "Too expensive.", "sentiment": "negative" }
            ]},
            { "name": "Couch", "reviews": [{ "body": "Could be better.", "sentiment": null }] },
            { "name": "Chair", "reviews": [{ "body": "Prefer something else.", "sentiment": "negative" }] }
        ]}),
        "{response}"
    );
    assert_eq!(response["errors"][0]["message"], "sentiment analysis is down", "{response}");
    assert_eq!(error_codes(&response), [json!("SENTIMENT_UNAVAILABLE")]);
}

#[tokio::test]
async fn a_root_field_error_keeps_its_path_and_code() {
    let store = Store::start_with_env(&passing()).await;

    let response = store.query("{ first: review(id: \"r3\") { body sentiment } }", json!({})).await;

    assert_eq!(response["data"], json!({ "first": { "body": "Could be better.", "sentiment": null } }), "{response}");
    assert_eq!(response["errors"][0]["path"], json!(["first", "sentiment"]), "{response}");
    assert_eq!(error_codes(&response), [json!("SENTIMENT_UNAVAILABLE")]);
}

/// `SUBGRAPH_ERRORS=pass`: these tests follow the test subgraphs' own codes
/// (`SENTIMENT_UNAVAILABLE`, `EMAIL_PRIVATE`), which masking would hide.
fn passing() -> [(&'static str, String); 1] {
    [("SUBGRAPH_ERRORS", "pass".to_owned())]
}

/// Waits (without sleeping) until nothing listens at the stopped subgraph's address.
async fn until_refused(url: &str) {
    let address = url.trim_start_matches("http://").trim_end_matches("/graphql").to_owned();
    while tokio::net::TcpStream::connect(&address).await.is_ok() {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_stopped_subgraph_gives_partial_data_and_subgraph_unavailable() {
    let journal = Journal::default();
    let accounts = accounts::spawn(&journal).await;
    let products = products::spawn(&journal).await;
    let reviews = reviews::spawn(&journal).await;
    let gateway = Gateway::start(&[("accounts", &accounts), ("products", &products), ("reviews", &reviews)]).await;
    let query = "{ me { name reviews { body } } review(id: \"r1\") { body } topProducts(first: 1) { name } }";
    let before = gateway.query(query, json!({})).await;
    assert_data(
        &before,
        json!({
            "me": { "name": "Ada Lovelace", "reviews": [{ "body": "Love it!" }, { "body": "Could be better." }] },
            "review": { "body": "Love it!" },
            "topProducts": [{ "name": "Table" }]
        }),
    );
    let url = reviews.url.clone();
    drop(reviews);
    until_refused(&url).await;

    let after = gateway.query(query, json!({})).await;

    assert_eq!(
        after["data"],
        json!({
            "me": { "name": "Ada Lovelace", "reviews": null },
            "review": null,
            "topProducts": [{ "name": "Table" }]
        }),
        "{after}"
    );
    assert_eq!(keys(&after["data"]), ["me", "review", "topProducts"]);
    let errors = after["errors"].as_array().unwrap_or_else(|| panic!("{after}"));
    assert!(errors.iter().all(|e| e["extensions"]["code"] == "SUBGRAPH_UNAVAILABLE"), "{after}");
    let paths: Vec<&Value> = errors.iter().map(|e| &e["path"]).collect();
    assert!(paths.contains(&&json!(["review"])), "{after}");
    assert!(
        paths.iter().any(|p| p.as_array().is_some_and(|p| p.first() == Some(&json!("me")))),
        "the failed entity fetch is reported under me: {after}"
    );
}

#[tokio::test]
async fn entity_errors_of_a_batched_fetch_land_once_each_on_their_own_objects() {
    let journal = Journal::default();
    let accounts = accounts::spawn(&journal).await;
    let products = products::spawn(&journal).await;
    let reviews = reviews::spawn(&journal).await;
    let proxy = spawn_indexing_proxy(&reviews).await;
    let parts = [
        ("accounts", accounts.sdl.clone(), accounts.url.clone()),
        ("products", products.sdl.clone(), products.url.clone()),
        ("reviews", reviews.sdl.clone(), proxy.url.clone()),
    ];
    let gateway = Gateway::start_with_env(&parts, &passing()).await;

    // Reviews of products and of a user, from one subgraph at once: a BatchFetch
    // with a list per type. r3 (Couch's first, Ada's second) has no sentiment.
    let response = gateway
        .query("{ topProducts(first: 2) { reviews { id sentiment } } me { reviews { id sentiment } } }", json!({}))
        .await;

    assert_eq!(
        response["data"],
        json!({
            "topProducts": [
                { "reviews": [{ "id": "r1", "sentiment": "positive" }, { "id": "r2", "sentiment": "negative" }] },
                { "reviews": [{ "id": "r3", "sentiment": null }] }
            ],
            "me": { "reviews": [{ "id": "r1", "sentiment": "positive" }, { "id": "r3", "sentiment": null }] }
        }),
        "{response}"
    );
    // The proxy splits the router's one batched request into one per representation.
    let asked = reviews.requests();
    assert!(asked.iter().all(|r| r["query"].as_str().is_some_and(|q| q.contains("_e1"))), "batched: {asked:?}");
    assert_eq!(asked.len(), 3, "u1, p1 and p2: {asked:?}");
    let paths: Vec<&Value> = response["errors"].as_array().into_iter().flatten().map(|e| &e["path"]).collect();
    assert_eq!(paths.len(), 2, "once each: {response}");
    assert!(paths.contains(&&json!(["topProducts", 1, "reviews", 0, "sentiment"])), "{response}");
    assert!(paths.contains(&&json!(["me", "reviews", 1, "sentiment"])), "{response}");
    assert_eq!(error_codes(&response), [json!("SENTIMENT_UNAVAILABLE"), json!("SENTIMENT_UNAVAILABLE")]);
}

/// A foreign subgraph whose `gadget` field fails three ways: an error of its
/// own code with a stack trace, a `FORBIDDEN` one with its stack trace, and a
/// `BAD_USER_INPUT` one with our `field` extension.
async fn failing_subgraph() -> ScriptedSubgraph {
    let sdl = "type Query { gadget: Gadget }\ntype Gadget { name: String secret: String size: Int }";
    ScriptedSubgraph::spawn(sdl, |_| {
        let trace = json!({ "stacktrace": ["Error: connect ECONNREFUSED 10.0.0.7:5432", "    at db.js:12"] });
        json!({
            "data": { "gadget": { "name": "Widget", "secret": null, "size": null } },
            "errors": [
                {
                    "message": "password authentication failed for user \"admin\"",
                    "path": ["gadget", "name"],
                    "locations": [{ "line": 1, "column": 10 }],
                    "extensions": { "code": "DB_ERROR", "exception": trace }
                },
                {
                    "message": "You may not see the secret",
                    "path": ["gadget", "secret"],
                    "extensions": { "code": "FORBIDDEN", "exception": trace, "internalId": 42 }
                },
                {
                    "message": "size must be positive",
                    "path": ["gadget", "size"],
                    "extensions": { "code": "BAD_USER_INPUT", "field": "size", "exception": trace }
                }
            ]
        })
    })
    .await
}

#[tokio::test]
async fn subgraph_errors_are_masked_by_default() {
    let gadgets = failing_subgraph().await;
    let gateway = Gateway::start_with(&[gadgets.part("gadgets")]).await;

    let response = gateway.query("{ gadget { name secret size } }", json!({})).await;

    assert_eq!(response["data"], json!({ "gadget": { "name": "Widget", "secret": null, "size": null } }));
    assert_eq!(
        response["errors"],
        json!([
            {
                "message": "Subgraph 'gadgets' answered with an error",
                "path": ["gadget", "name"],
                "extensions": { "code": "INTERNAL", "serviceName": "gadgets" }
            },
            {
                "message": "You may not see the secret",
                "path": ["gadget", "secret"],
                "extensions": { "code": "FORBIDDEN", "serviceName": "gadgets" }
            },
            {
                "message": "size must be positive",
                "path": ["gadget", "size"],
                "extensions": { "code": "BAD_USER_INPUT", "field": "size", "serviceName": "gadgets" }
            }
        ]),
        "unknown codes get a generic message, known ones keep theirs, no stack trace passes: {response}"
    );
}

#[tokio::test]
async fn subgraph_errors_pass_whole_but_for_locations_when_asked() {
    let gadgets = failing_subgraph().await;
    let gateway = Gateway::start_with_env(&[gadgets.part("gadgets")], &passing()).await;

    let response = gateway.query("{ gadget { name } }", json!({})).await;

    let errors = response["errors"].as_array().unwrap_or_else(|| panic!("{response}"));
    assert_eq!(errors[0]["message"], "password authentication failed for user \"admin\"", "{response}");
    assert_eq!(errors[0]["extensions"]["code"], "DB_ERROR");
    assert!(errors[0]["extensions"]["exception"]["stacktrace"].is_array(), "{response}");
    assert_eq!(errors[0].get("locations"), None, "they point into the subgraph's operation: {response}");
    assert_eq!(errors[1]["extensions"]["internalId"], 42);
}
