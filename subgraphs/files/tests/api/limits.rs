//! The files port refuses what the router refuses: it is no side door.

use serde_json::json;

use crate::helpers::{error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn abusive_documents_are_refused_directly_on_the_port_and_health_stays_live() {
    let app = spawn_app().await;
    kit::testing::limits::assert_document_limits(&app.client, &app.address).await;
}

#[tokio::test]
async fn a_list_without_first_costs_the_schemas_default_page() {
    // files 1 + 20 (the schema's default `first`) × (edges 1 + node 1 + filename 1).
    let query = "{ files { edges { node { filename } } } }";
    let refused = spawn_app_with(|env| env.set("MAX_QUERY_COST", "60")).await;
    let user = refused.user();
    let answer = refused.graphql(Some(&user.token), query, json!({})).await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert_eq!(message, "The operation's estimated cost is 61, over the limit of 60 (MAX_QUERY_COST)");

    let allowed = spawn_app_with(|env| env.set("MAX_QUERY_COST", "61")).await;
    let user = allowed.user();
    let answer = allowed.graphql(Some(&user.token), query, json!({})).await;
    assert_eq!(answer["data"]["files"]["edges"], json!([]), "{answer}");
}
