//! Files through the router: multipart uploads streamed to the files subgraph,
//! refused on their headers when they must be, and downloads passed through.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    RouterClient, Subgraph, multipart, multipart_with, repo_path, spawn_auth, spawn_files, spawn_router,
};

/// `owner` comes from the auth subgraph: a fetch of its own after the upload's.
const UPLOAD: &str =
    "mutation($file: Upload!) { uploadFile(file: $file) { id filename size downloadUrl owner { email } } }";

struct Stack {
    router: RouterClient,
    _files: Subgraph,
    _auth: Subgraph,
}

async fn stack(vars: &[(&str, String)]) -> Stack {
    let auth = spawn_auth().await;
    let files = spawn_files(&auth).await;
    let mut all = vec![
        ("SUBGRAPH_AUTH_URL", format!("{}/graphql", auth.running.address)),
        ("JWKS_URL", format!("{}/.well-known/jwks.json", auth.running.address)),
        ("SUBGRAPH_FILES_URL", format!("{}/graphql", files.running.address)),
    ];
    all.extend(vars.iter().cloned());
    let router = spawn_router(repo_path("schema/supergraph.graphql"), &all).await;
    Stack { router, _files: files, _auth: auth }
}

async fn register(router: &RouterClient, email: &str) -> String {
    let query =
        format!("mutation {{ register(email: \"{email}\", password: \"through the router 1\") {{ accessToken }} }}");
    let registered = router.graphql(None, &query, json!({})).await;
    registered["data"]["register"]["accessToken"].as_str().unwrap_or_else(|| panic!("{registered}")).to_owned()
}

async fn upload(router: &RouterClient, token: &str, filename: &str, content: &[u8]) -> reqwest::Response {
    router.upload(token, UPLOAD, filename, content).await
}

async fn file_count(router: &RouterClient, token: &str) -> Value {
    router.graphql(Some(token), "{ files { totalCount } }", json!({})).await["data"]["files"]["totalCount"].clone()
}

#[tokio::test]
async fn an_upload_through_the_router_is_stored_and_downloads_through_it_with_ranges() {
    let s = stack(&[]).await;
    let token = register(&s.router, "upload@example.com").await;
    let content = b"0123456789 hello through the router";

    let uploaded = upload(&s.router, &token, "notes.txt", content).await;
    assert_eq!(uploaded.status(), 200);
    let uploaded: Value = uploaded.json().await.unwrap();
    let file = &uploaded["data"]["uploadFile"];
    assert_eq!(file["filename"], "notes.txt", "{uploaded}");
    assert_eq!(file["size"], content.len());
    assert_eq!(file["owner"]["email"], "upload@example.com", "the other fetch ran as usual: {uploaded}");
    let url = file["downloadUrl"].as_str().unwrap();
    assert!(url.starts_with("/files/"), "{url}");

    // The signed URL works through the router's origin, whole and in part.
    let whole = s.router.http.get(s.router.url(url)).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "text/plain");
    assert!(whole.headers()["content-disposition"].to_str().unwrap().contains("notes.txt"));
    assert_eq!(whole.bytes().await.unwrap().as_ref(), content);
    let part = s.router.http.get(s.router.url(url)).header("range", "bytes=11-15").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], format!("bytes 11-15/{}", content.len()));
    assert_eq!(part.bytes().await.unwrap().as_ref(), b"hello");
    let etag = s.router.http.get(s.router.url(url)).send().await.unwrap().headers()["etag"].clone();
    let cached = s.router.http.get(s.router.url(url)).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(cached.status(), 304);
    // Tampering, unknown ids and other paths stay 404.
    let tampered = url.replace("sig=", "sig=0");
    assert_eq!(s.router.http.get(s.router.url(&tampered)).send().await.unwrap().status(), 404);
    let unknown = s.router.url(&format!("/files/{}/content", uuid::Uuid::new_v4()));
    assert_eq!(s.router.http.get(unknown).send().await.unwrap().status(), 404);
    let traversal = s.router.url("/files/..%2F..%2Fgraphql/content");
    assert_eq!(s.router.http.get(traversal).send().await.unwrap().status(), 404);
    assert_eq!(file_count(&s.router, &token).await, 1);
}

#[tokio::test]
async fn files_go_to_items_of_upload_lists_and_nowhere_else() {
    let s = stack(&[]).await;
    let token = register(&s.router, "list@example.com").await;
    let send = |query: &str, variables: Value, map: Value| {
        let (content_type, body) =
            multipart_with(&json!({ "query": query, "variables": variables }), &map, "a.txt", b"in a list");
        s.router
            .http
            .post(s.router.url("/graphql"))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .header("apollo-require-preflight", "true")
            .body(body)
            .send()
    };
    let many = "mutation($files: [Upload!]!) { uploadFiles(files: $files) { filename } }";
    let stored: Value = send(many, json!({ "files": [null] }), json!({ "0": ["variables.files.0"] }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored, json!({ "data": { "uploadFiles": [{ "filename": "a.txt" }] } }));

    // The list itself is no file, nor is a single upload a list.
    for (query, variables, path) in
        [(many, json!({ "files": null }), "variables.files"), (UPLOAD, json!({ "file": [null] }), "variables.file.0")]
    {
        let refused: Value = send(query, variables, json!({ "0": [path] })).await.unwrap().json().await.unwrap();
        assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{path}: {refused}");
        assert!(refused["errors"][0]["message"].as_str().unwrap().contains("of type Upload or [Upload]"), "{refused}");
    }
    assert_eq!(file_count(&s.router, &token).await, 1);
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_and_nothing_is_kept() {
    let s = stack(&[("UPLOAD_MAX_FILE_BYTES", "1000".into())]).await;
    let token = register(&s.router, "big@example.com").await;
    // Streamed without a declared length, so only counting can catch it.
    let (content_type, body) = multipart(UPLOAD, "big.txt", &vec![b'a'; 5000]);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body.chunks(700).map(|c| Ok(c.to_vec())).collect();
    let refused = s
        .router
        .http
        .post(s.router.url("/graphql"))
        .bearer_auth(&token)
        .header("content-type", content_type)
        .header("apollo-require-preflight", "true")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 413);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE", "{body}");
    assert_eq!(file_count(&s.router, &token).await, 0);
    // The subgraph stays healthy in the breaker's eyes: the next upload works.
    assert_eq!(upload(&s.router, &token, "small.txt", b"small").await.status(), 200);
}

#[tokio::test]
async fn multipart_needs_a_preflight_header() {
    let s = stack(&[]).await;
    let token = register(&s.router, "csrf@example.com").await;
    let (content_type, body) = multipart(UPLOAD, "notes.txt", b"forged");
    let forged = s
        .router
        .http
        .post(s.router.url("/graphql"))
        .bearer_auth(&token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let body: Value = forged.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "CSRF_SUSPECTED", "{body}");
    assert_eq!(file_count(&s.router, &token).await, 0);
}

/// Sends a multipart request's head and only the start of its body, then reads
/// the status line: an answer proves the router did not wait for the body.
async fn status_before_body(router: &RouterClient, extra_headers: &str, declared_length: usize) -> u16 {
    let address = router.running.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: {address}\r\ncontent-type: multipart/form-data; boundary=xyz\r\n\
         apollo-require-preflight: true\r\ncontent-length: {declared_length}\r\n{extra_headers}\r\n--xyz\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buffer = [0u8; 1024];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("answered without the body")
            .unwrap();
        assert!(n > 0, "connection closed without an answer");
        response.extend_from_slice(&buffer[..n]);
    }
    let status_line = String::from_utf8_lossy(&response);
    status_line.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn multipart_is_refused_on_its_headers_before_its_body_is_read() {
    let s = stack(&[("UPLOAD_MAX_FILE_BYTES", "1000".into()), ("RATE_LIMIT_IP", "2/1h".into())]).await;
    assert_eq!(status_before_body(&s.router, "authorization: Bearer forged\r\n", 500).await, 401);
    assert_eq!(status_before_body(&s.router, "", 50 * 1024 * 1024).await, 413, "declared length over the limit");
    // The 413 was refused before any limit was charged; this is the IP's second request.
    s.router.graphql(None, "{ __typename }", json!({})).await;
    assert_eq!(status_before_body(&s.router, "", 500).await, 429);
}
