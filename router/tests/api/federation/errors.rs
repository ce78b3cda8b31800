//! Errors: subgraph field errors under entities get the client's path and keep
//! their code; a stopped subgraph gives partial data and SUBGRAPH_UNAVAILABLE.

use axum::Json;
use serde_json::{Value, json};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::fixtures::{Gateway, Journal, Store, accounts, assert_data, error_codes, keys, products, reviews};
use crate::helpers::TestSubgraph;

/// async-graphql leaves the representation's index out of `_entities` error
/// paths (`["_entities", "reviews", 0, "sentiment"]`). This proxy sends each
/// representation alone to the subgraph behind it and puts the index back
/// (`["_entities", 1, "reviews", 0, "sentiment"]`), as the federation spec has it.
struct IndexingProxy {
    url: String,
    _stop: DropGuard,
}

async fn forward(http: &reqwest::Client, backend: &str, body: &Value) -> Value {
    http.post(backend).json(body).send().await.expect("subgraph answers").json().await.expect("JSON")
}

async fn answer(http: reqwest::Client, backend: String, body: Value) -> Value {
    let Some(representations) = body["variables"]["representations"].as_array().cloned() else {
        return forward(&http, &backend, &body).await;
    };
    let (mut entities, mut errors) = (Vec::new(), Vec::new());
    for (index, representation) in representations.into_iter().enumerate() {
        let mut alone = body.clone();
        alone["variables"]["representations"] = json!([representation]);
        let answer = forward(&http, &backend, &alone).await;
        entities.push(answer["data"]["_entities"][0].clone());
        for mut error in answer["errors"].as_array().cloned().unwrap_or_default() {
            if let Some(path) = error["path"].as_array_mut() {
                path.insert(1, json!(index));
            }
            errors.push(error);
        }
    }
    let mut response = json!({ "data": { "_entities": entities } });
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
    let gateway = Gateway::start_with(&[
        ("products", products.sdl.clone(), products.url.clone()),
        ("reviews", reviews.sdl.clone(), proxy.url.clone()),
    ])
    .await;

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
    let gateway = Gateway::start_with(&[
        ("accounts", accounts.sdl.clone(), proxy.url.clone()),
        ("products", products.sdl.clone(), products.url.clone()),
        ("reviews", reviews.sdl.clone(), reviews.url.clone()),
    ])
    .await;

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
    let store = Store::start().await;

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
    let store = Store::start().await;

    let response = store.query("{ first: review(id: \"r3\") { body sentiment } }", json!({})).await;

    assert_eq!(response["data"], json!({ "first": { "body": "Could be better.", "sentiment": null } }), "{response}");
    assert_eq!(response["errors"][0]["path"], json!(["first", "sentiment"]), "{response}");
    assert_eq!(error_codes(&response), [json!("SENTIMENT_UNAVAILABLE")]);
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
