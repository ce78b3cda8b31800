use serde_json::json;

use crate::helpers::{repo_path, spawn_router};

#[tokio::test]
async fn introspection_is_answered_by_the_router_from_the_api_schema() {
    // No subgraph needs to be up: the router answers introspection itself.
    let router = spawn_router(repo_path("schema/supergraph.graphql"), &[]).await;

    let response = router
        .graphql(
            None,
            "query { __schema { queryType { name } mutationType { name } types { name } }
                     user: __type(name: \"User\") { kind fields { name } }
                     hidden: __type(name: \"join__Graph\") { name } __typename }",
            json!({}),
        )
        .await;

    assert!(response.get("errors").is_none(), "{response}");
    let data = &response["data"];
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    assert_eq!(data["__schema"]["mutationType"]["name"], "Mutation");
    let types: Vec<&str> =
        data["__schema"]["types"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(types.contains(&"AuthPayload") && types.contains(&"__Schema"), "{types:?}");
    assert!(!types.iter().any(|t| t.starts_with("join__") || t.starts_with("link__")), "{types:?}");
    assert_eq!(
        data["user"],
        json!({ "kind": "OBJECT", "fields": [
            { "name": "id" }, { "name": "email" }, { "name": "createdAt" }, { "name": "files" }, { "name": "tasks" }
        ] }),
        "fields merged from every subgraph, in supergraph order"
    );
    assert_eq!(data["hidden"], json!(null));
    assert_eq!(data["__typename"], "Query");
}

#[tokio::test]
async fn introspection_can_be_turned_off() {
    let router = spawn_router(repo_path("schema/supergraph.graphql"), &[("INTROSPECTION", "false".to_owned())]).await;
    let response = router.graphql(None, "{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(response["errors"][0]["extensions"]["code"], "INTROSPECTION_DISABLED", "{response}");
    assert!(response.get("data").is_none());
}
