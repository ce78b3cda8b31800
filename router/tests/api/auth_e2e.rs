use serde_json::json;

use crate::helpers::{repo_path, spawn_auth, spawn_router};

#[tokio::test]
async fn register_login_and_me_through_the_router() {
    let auth = spawn_auth().await;
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[
            ("SUBGRAPH_AUTH_URL", format!("{}/graphql", auth.running.address)),
            ("JWKS_URL", format!("{}/.well-known/jwks.json", auth.running.address)),
        ],
    )
    .await;

    let registered = router
        .graphql(
            None,
            "mutation Register($e: String!, $p: String!) { account: register(email: $e, password: $p) { user { email } } }",
            json!({ "e": "Router@Example.com", "p": "via the router 1" }),
        )
        .await;
    assert_eq!(registered["data"]["account"]["user"]["email"], "router@example.com", "{registered}");

    let login = router
        .graphql(
            None,
            "mutation { login(email: \"router@example.com\", password: \"via the router 1\") { accessToken expiresIn } }",
            json!({}),
        )
        .await;
    let token = login["data"]["login"]["accessToken"].as_str().unwrap_or_else(|| panic!("{login}")).to_owned();

    let me = router.graphql(Some(&token), "query { me { email id __typename } }", json!({})).await;
    assert_eq!(me["data"]["me"]["email"], "router@example.com", "{me}");
    assert_eq!(me["data"]["me"]["__typename"], "User");
    let keys: Vec<&String> = me["data"]["me"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["email", "id", "__typename"], "the client's field order");

    let anonymous = router.graphql(None, "{ me { email } }", json!({})).await;
    assert_eq!(anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{anonymous}");
    assert_eq!(anonymous["errors"][0]["path"], json!(["me"]));
    assert_eq!(anonymous["data"]["me"], json!(null));

    let wrong = router
        .graphql(
            None,
            "mutation { login(email: \"router@example.com\", password: \"nope nope 1\") { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(wrong["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{wrong}");
    assert!(wrong["data"].is_null(), "non-null login bubbles to data: {wrong}");
}
