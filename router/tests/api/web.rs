//! What the router serves browsers besides the API: GraphiQL from its own
//! embedded assets, and the web app from `FRONTEND_DIR`.

use uuid::Uuid;

use crate::helpers::{TempDir, repo_path, spawn_auth, spawn_router};

#[tokio::test]
async fn graphiql_comes_from_the_router_itself_under_a_strict_csp() {
    let auth = spawn_auth().await;
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[("SUBGRAPH_AUTH_URL", format!("{}/graphql", auth.running.address))],
    )
    .await;

    let page = router.http.get(router.url("/graphql")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("http"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"src="/graphiql/graphiql.js""#), "{html}");
    let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a style nonce");
    assert!(html.contains(&format!(r#"content="{nonce}""#)), "the page hands its script the nonce");
    let again = router.http.get(router.url("/graphql")).header("accept", "text/html").send().await.unwrap();
    assert!(!again.headers()["content-security-policy"].to_str().unwrap().contains(nonce), "a nonce per response");
    assert!(!html.contains("https://") && !html.contains("<script>"), "no CDN and no inline script: {html}");

    for (path, content_type) in [("/graphiql/graphiql.js", "text/javascript"), ("/graphiql/graphiql.css", "text/css")] {
        let asset = router.http.get(router.url(path)).send().await.unwrap();
        assert_eq!(asset.status(), 200, "{path}");
        assert!(asset.headers()["content-type"].to_str().unwrap().starts_with(content_type), "{path}");
        assert!(asset.bytes().await.unwrap().len() > 10_000, "{path} is GraphiQL's build");
    }

    let off = spawn_router(repo_path("schema/supergraph.graphql"), &[("GRAPHIQL", "false".to_owned())]).await;
    let asset = off.http.get(off.url("/graphiql/graphiql.js")).send().await.unwrap();
    assert_eq!(asset.status(), 404, "GRAPHIQL=false serves none of it");
}

#[tokio::test]
async fn the_web_app_is_served_at_the_root_with_page_paths_falling_back_to_index_html() {
    let dist = TempDir(std::env::temp_dir().join(format!("taskgraph-web-{}", Uuid::new_v4().simple())));
    std::fs::create_dir_all(dist.0.join("assets")).unwrap();
    std::fs::write(dist.0.join("index.html"), "<!doctype html><title>app</title>").unwrap();
    std::fs::write(dist.0.join("assets/index-Ab12_x.js"), "console.log(1)").unwrap();
    std::fs::write(dist.0.join("favicon.svg"), "<svg/>").unwrap();
    std::fs::write(dist.0.join(".env"), "SECRET=1").unwrap();
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[("FRONTEND_DIR", dist.0.display().to_string()), ("SUBGRAPH_AUTH_URL", "http://127.0.0.1:1/graphql".into())],
    )
    .await;
    let get = |path: &str, accept: &str| router.http.get(router.url(path)).header("accept", accept.to_owned()).send();

    let index = get("/", "text/html").await.unwrap();
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["cache-control"], "no-cache");
    assert!(index.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'self'"));
    assert_eq!(index.text().await.unwrap(), "<!doctype html><title>app</title>");

    let asset = get("/assets/index-Ab12_x.js", "*/*").await.unwrap();
    assert_eq!(asset.status(), 200);
    assert_eq!(asset.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert!(asset.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    let icon = get("/favicon.svg", "image/*").await.unwrap();
    assert_eq!((icon.status().as_u16(), icon.headers()["cache-control"].to_str().unwrap()), (200, "no-cache"));

    for page in ["/tasks", "/files", "/account", "/files/"] {
        let deep = get(page, "text/html,application/xhtml+xml").await.unwrap();
        assert_eq!(deep.status(), 200, "{page}");
        assert_eq!(deep.text().await.unwrap(), "<!doctype html><title>app</title>", "{page}");
    }
    for missing in ["/assets/gone-123.js", "/.env", "/assets/../.env", "/%2e%2e/Cargo.toml"] {
        assert_eq!(get(missing, "*/*").await.unwrap().status(), 404, "{missing}");
    }
    for accept in ["application/json", "*/*"] {
        assert_eq!(get("/tasks", accept).await.unwrap().status(), 404, "only a browser gets the page: {accept}");
    }
    let root = router.http.get(router.url("/")).send().await.unwrap();
    assert_eq!(root.status(), 200, "`/` is the app whatever the client accepts");
    let bare = router.http.get(router.url("/metrics")).send().await.unwrap();
    assert_eq!(bare.status(), 404, "a scraper on the public port finds no metrics, and no app either");

    // The API keeps its paths.
    let api = router.http.post(router.url("/graphql")).json(&serde_json::json!({"query": "{ __typename }"}));
    assert_eq!(api.send().await.unwrap().json::<serde_json::Value>().await.unwrap()["data"]["__typename"], "Query");
    let download = get("/files/not-a-file/content", "*/*").await.unwrap();
    assert_ne!(download.headers().get("content-type").map(|v| v.to_str().unwrap()), Some("text/html; charset=utf-8"));
    let health = get("/health/live", "*/*").await.unwrap();
    assert_eq!(health.status(), 200);
}
