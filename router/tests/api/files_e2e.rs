//! The real auth and files subgraphs behind the router.

use serde_json::json;

use crate::helpers::{repo_path, spawn_auth, spawn_files, spawn_router};

#[tokio::test]
async fn my_files_with_their_owner_are_listed_renamed_and_deleted_through_the_router() {
    let auth = spawn_auth().await;
    let files = spawn_files(&auth).await;
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[
            ("SUBGRAPH_AUTH_URL", format!("{}/graphql", auth.running.address)),
            ("JWKS_URL", format!("{}/.well-known/jwks.json", auth.running.address)),
            ("SUBGRAPH_FILES_URL", format!("{}/graphql", files.running.address)),
        ],
    )
    .await;
    let registered = router
        .graphql(
            None,
            "mutation { register(email: \"files@example.com\", password: \"through the router 1\") { accessToken } }",
            json!({}),
        )
        .await;
    let token =
        registered["data"]["register"]["accessToken"].as_str().unwrap_or_else(|| panic!("{registered}")).to_owned();
    let uploaded: serde_json::Value = router
        .upload(
            &token,
            "mutation($file: Upload!) { uploadFile(file: $file) { id } }",
            "notes.txt",
            b"hello through the router",
        )
        .await
        .json()
        .await
        .unwrap();
    let id = uploaded["data"]["uploadFile"]["id"].as_str().unwrap_or_else(|| panic!("{uploaded}")).to_owned();

    let me = router
        .graphql(
            Some(&token),
            "{ me { email files { totalCount edges { node { id filename contentType size downloadUrl owner { email } } } } } }",
            json!({}),
        )
        .await;
    let node = &me["data"]["me"]["files"]["edges"][0]["node"];
    assert_eq!(me["data"]["me"]["files"]["totalCount"], 1, "{me}");
    assert_eq!(node["filename"], "notes.txt");
    assert_eq!(node["contentType"], "text/plain");
    assert_eq!(node["size"], 24);
    assert_eq!(node["owner"]["email"], "files@example.com");
    let url = node["downloadUrl"].as_str().unwrap();
    let download = reqwest::get(router.url(url)).await.unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.unwrap().as_ref(), b"hello through the router");

    let renamed = router
        .graphql(
            Some(&token),
            "mutation($id: ID!) { renameFile(id: $id, filename: \"renamed.txt\") { filename } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(renamed["data"]["renameFile"]["filename"], "renamed.txt", "{renamed}");
    let deleted = router.graphql(Some(&token), "mutation($id: ID!) { deleteFile(id: $id) }", json!({ "id": id })).await;
    assert_eq!(deleted["data"]["deleteFile"], true, "{deleted}");
    let gone = router.graphql(Some(&token), "{ files { totalCount } }", json!({})).await;
    assert_eq!(gone["data"]["files"]["totalCount"], 0, "{gone}");
}
