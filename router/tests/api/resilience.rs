//! Subgraph failures: the circuit breaker (closed → open → half-open → closed)
//! and retries of queries, never of mutations.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use kit::testing::{TcpGate, eventually};
use serde_json::{Value, json};

use crate::helpers::{
    RouterClient, Subgraph, SupergraphFile, compose, multipart, multipart_with, spawn_router, spawn_stack,
    spawn_subgraph,
};

struct Greeting;

#[Object(name = "Query")]
impl Greeting {
    /// Nullable, so that its failure leaves the rest of the response standing.
    async fn hello(&self) -> Option<&str> {
        Some("hi")
    }
}

struct Farewell;

#[Object(name = "Query")]
impl Farewell {
    async fn goodbye(&self) -> &str {
        "bye"
    }
}

fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

fn message(response: &Value) -> &str {
    response["errors"][0]["message"].as_str().unwrap_or("")
}

async fn circuit_gauge(router: &crate::helpers::RouterClient) -> Option<String> {
    let metrics = router.http.get(router.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    metrics
        .lines()
        .find(|l| l.starts_with("subgraph_circuit_state{") && l.contains("subgraph=\"gated\""))
        .and_then(|l| l.rsplit(' ').next())
        .map(str::to_owned)
}

#[tokio::test]
async fn the_circuit_opens_fails_fast_probes_and_closes_while_the_rest_keeps_answering() {
    let greeting =
        spawn_subgraph(Schema::build(Greeting, EmptyMutation, EmptySubscription).enable_federation().finish()).await;
    let farewell =
        spawn_subgraph(Schema::build(Farewell, EmptyMutation, EmptySubscription).enable_federation().finish()).await;
    let target = greeting.url.trim_start_matches("http://").trim_end_matches("/graphql").parse().unwrap();
    let gate = TcpGate::start(target, true).await;
    let gated_url = format!("http://127.0.0.1:{}/graphql", gate.port);
    let supergraph = SupergraphFile::new(&compose(&[
        // A name of this test's own: the metrics are the process's, shared by
        // every router of this test binary, and others call theirs "greeting".
        ("gated", greeting.sdl.clone(), gated_url),
        ("farewell", farewell.sdl.clone(), farewell.url.clone()),
    ]));
    let router = spawn_router(
        supergraph.path.clone(),
        &[
            ("CIRCUIT_BREAKER_FAILURES", "2".into()),
            ("CIRCUIT_BREAKER_COOL_DOWN", "300ms".into()),
            ("SUBGRAPH_RETRIES", "0".into()),
        ],
    )
    .await;
    let both = "{ hello goodbye }";
    assert_eq!(router.graphql(None, both, json!({})).await, json!({ "data": { "hello": "hi", "goodbye": "bye" } }));

    // Outage: two failures open the circuit; the other subgraph's field still comes back.
    gate.close();
    for _ in 0..2 {
        let partial = router.graphql(None, both, json!({})).await;
        assert_eq!(code(&partial), "SUBGRAPH_UNAVAILABLE", "{partial}");
        assert_eq!(partial["data"]["goodbye"], "bye", "{partial}");
        assert!(!message(&partial).contains("failing fast"), "{partial}");
    }
    let fast = router.graphql(None, both, json!({})).await;
    assert!(message(&fast).contains("failing fast"), "open: no call is made: {fast}");
    assert_eq!(fast["data"]["goodbye"], "bye");
    assert_eq!(circuit_gauge(&router).await.as_deref(), Some("2"), "open");

    // Still down when the probe goes: it fails, and the circuit opens again.
    let reopened_after_probe = Arc::new(AtomicUsize::new(0));
    eventually("a failed probe reopens the circuit", || {
        let (router, seen) = (&router, reopened_after_probe.clone());
        async move {
            let response = router.graphql(None, both, json!({})).await;
            // A probe shows as a plain failure; the next request fails fast again.
            if !message(&response).contains("failing fast") {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            seen.load(Ordering::SeqCst) > 0 && message(&response).contains("failing fast")
        }
    })
    .await;

    // Back up: after the cool-down one probe succeeds and the circuit closes.
    gate.open();
    eventually("the circuit closes after a successful probe", || async {
        router.graphql(None, both, json!({})).await == json!({ "data": { "hello": "hi", "goodbye": "bye" } })
    })
    .await;
    assert_eq!(circuit_gauge(&router).await.as_deref(), Some("0"), "closed");
    assert_eq!(router.graphql(None, both, json!({})).await["data"]["hello"], "hi");
}

struct Poke;

#[Object(name = "Mutation")]
impl Poke {
    async fn poke(&self) -> bool {
        true
    }
}

/// A subgraph that answers 503 to its first request, then well.
async fn flaky_subgraph() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::post(move |body: String| {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy".to_owned());
                }
                let data = if body.contains("poke") { json!({ "poke": true }) } else { json!({ "hello": "hi" }) };
                (axum::http::StatusCode::OK, json!({ "data": data }).to_string())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

#[tokio::test]
async fn queries_are_retried_and_mutations_are_not() {
    let sdl = Schema::build(Greeting, Poke, EmptySubscription).enable_federation().finish();
    let sdl = sdl.sdl_with_options(async_graphql::SDLExportOptions::new().federation());

    let (url, calls) = flaky_subgraph().await;
    let supergraph = SupergraphFile::new(&compose(&[("greeting", sdl.clone(), url)]));
    let router = spawn_router(supergraph.path.clone(), &[("SUBGRAPH_RETRY_BACKOFF", "1ms".into())]).await;
    assert_eq!(router.graphql(None, "{ hello }", json!({})).await, json!({ "data": { "hello": "hi" } }));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one failure, one retry");

    let (url, calls) = flaky_subgraph().await;
    let supergraph = SupergraphFile::new(&compose(&[("greeting", sdl, url)]));
    let router = spawn_router(supergraph.path.clone(), &[("SUBGRAPH_RETRY_BACKOFF", "1ms".into())]).await;
    let mutation = router.graphql(None, "mutation { poke }", json!({})).await;
    assert_eq!(code(&mutation), "SUBGRAPH_UNAVAILABLE", "{mutation}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a mutation is sent once");
}

/// A subgraph that counts its connections and holds every answer until released.
struct HeldSubgraph {
    url: String,
    accepted: Arc<AtomicUsize>,
    release: tokio::sync::watch::Sender<bool>,
}

async fn held_subgraph() -> HeldSubgraph {
    let (release, released) = tokio::sync::watch::channel(false);
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::post(move || {
            let mut released = released.clone();
            async move {
                let _ = released.wait_for(|go| *go).await;
                axum::Json(json!({ "data": { "hello": "hi" } }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let listener = axum::serve::ListenerExt::tap_io(listener, move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    HeldSubgraph { url, accepted, release }
}

#[tokio::test]
async fn connections_to_a_subgraph_are_capped_and_the_overflow_fails_fast_without_opening_its_circuit() {
    let sdl = Schema::build(Greeting, EmptyMutation, EmptySubscription).enable_federation().finish();
    let sdl = sdl.sdl_with_options(async_graphql::SDLExportOptions::new().federation());
    let held = held_subgraph().await;
    let supergraph = SupergraphFile::new(&compose(&[("greeting", sdl, held.url.clone())]));
    let router = Arc::new(
        spawn_router(
            supergraph.path.clone(),
            &[
                ("SUBGRAPH_MAX_CONNECTIONS", "2".into()),
                ("SUBGRAPH_CONNECTION_WAIT", "200ms".into()),
                ("SUBGRAPH_TIMEOUT", "60s".into()),
                ("CIRCUIT_BREAKER_FAILURES", "2".into()),
                ("SUBGRAPH_RETRIES", "0".into()),
                // Five identical queries: each must make its own fetch.
                ("REQUEST_DEDUPE", "false".into()),
                ("SUBGRAPH_DEDUPE", "false".into()),
            ],
        )
        .await,
    );

    // Five at once: two hold the two connections, three wait for one and give up.
    let (done, mut answers) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..5 {
        let (router, done) = (router.clone(), done.clone());
        tokio::spawn(async move { done.send(router.graphql(None, "{ hello }", json!({})).await) });
    }
    for _ in 0..3 {
        let overflow = tokio::time::timeout(std::time::Duration::from_secs(20), answers.recv())
            .await
            .expect("requests over the cap are answered while the others are held")
            .unwrap();
        assert_eq!(code(&overflow), "SUBGRAPH_UNAVAILABLE", "{overflow}");
        assert!(message(&overflow).contains("connections are busy"), "{overflow}");
    }
    held.release.send(true).unwrap();
    for _ in 0..2 {
        assert_eq!(answers.recv().await.unwrap(), json!({ "data": { "hello": "hi" } }));
    }
    assert_eq!(held.accepted.load(Ordering::SeqCst), 2, "never more than the cap");

    // Three refusals with a threshold of two, and the circuit is still closed.
    assert_eq!(router.graphql(None, "{ hello }", json!({})).await, json!({ "data": { "hello": "hi" } }));
    assert_ne!(circuit_gauge(&router).await.as_deref(), Some("2"));
    assert_eq!(held.accepted.load(Ordering::SeqCst), 2, "pooled connections are reused");
}

/// The real subgraphs behind a router whose circuits open after two failures
/// and stay open for the whole test, so that any failure counted shows.
struct Stack {
    router: RouterClient,
    _subgraphs: [Subgraph; 3],
}

async fn stack() -> Stack {
    let vars = [
        ("CIRCUIT_BREAKER_FAILURES", "2".into()),
        ("CIRCUIT_BREAKER_COOL_DOWN", "1h".into()),
        ("SUBGRAPH_RETRIES", "0".into()),
        ("SUBGRAPH_TIMEOUT", "10s".into()),
        ("SUBGRAPH_MAX_RESPONSE_BYTES", "4096".into()),
        ("UPLOAD_MAX_FILE_BYTES", "1000".into()),
        ("REQUEST_TIMEOUT", "2s".into()),
    ];
    let (auth, tasks, files, router) = spawn_stack(&vars).await;
    Stack { router, _subgraphs: [auth, tasks, files] }
}

async fn register(router: &RouterClient, email: &str) -> String {
    let query = format!(
        "mutation {{ register(email: \"{email}\", password: \"a long enough password 1\") {{ accessToken }} }}"
    );
    let registered = router.graphql(None, &query, json!({})).await;
    registered["data"]["register"]["accessToken"].as_str().unwrap_or_else(|| panic!("{registered}")).to_owned()
}

/// More than `CIRCUIT_BREAKER_FAILURES`: had any of them counted, the circuit would be open.
const ROUNDS: usize = 4;

const UPLOAD: &str = "mutation($file: Upload!) { uploadFile(file: $file) { id } }";

/// What the other user sees: one field of each subgraph, with no error.
async fn assert_bystander_served(router: &RouterClient, token: &str, after: &str) {
    let query = "{ me { email tasks { totalCount } files { totalCount } } }";
    let response = router.graphql(Some(token), query, json!({})).await;
    assert!(response.get("errors").is_none(), "after {after}: {response}");
    assert_eq!(response["data"]["me"]["tasks"]["totalCount"], 0, "after {after}: {response}");
    assert_eq!(response["data"]["me"]["files"]["totalCount"], 0, "after {after}: {response}");
}

/// Sends an upload's head and most of its body, declaring all of it, and
/// returns the connection with the end of the file still unsent.
async fn start_upload(router: &RouterClient, token: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let (content_type, body) = multipart(UPLOAD, "half.txt", &[b'a'; 900]);
    let address = router.running.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: {address}\r\ncontent-type: {content_type}\r\napollo-require-preflight: true\r\n\
         authorization: Bearer {token}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..body.len() - 500]).await.unwrap();
    stream
}

/// Posts a multipart request with these `operations` and `map`, and one small file.
async fn upload_mapped(router: &RouterClient, token: &str, operations: Value, map: Value) -> Value {
    let (content_type, body) = multipart_with(&operations, &map, "notes.txt", b"a small file");
    let response = router
        .http
        .post(router.url("/graphql"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .header("apollo-require-preflight", "true")
        .body(body)
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

async fn own_task_count(router: &RouterClient, token: &str) -> Value {
    router.graphql(Some(token), "{ tasks { totalCount } }", json!({})).await["data"]["tasks"]["totalCount"].clone()
}

#[tokio::test]
async fn what_one_client_breaks_never_opens_a_circuit_for_everyone() {
    let s = stack().await;
    let mallory = register(&s.router, "mallory@example.com").await;
    let alice = register(&s.router, "alice@example.com").await;

    // Uploads abandoned mid-body: the client goes away, or stops sending until the request times out.
    for _ in 0..ROUNDS {
        drop(start_upload(&s.router, &mallory).await);
    }
    let stalled = (0..ROUNDS).map(|_| async {
        use tokio::io::AsyncReadExt;
        let mut stream = start_upload(&s.router, &mallory).await;
        let mut answer = [0u8; 12];
        let read = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read_exact(&mut answer));
        read.await.expect("a stalled upload is answered once REQUEST_TIMEOUT is up").unwrap();
    });
    futures::future::join_all(stalled).await;
    assert_bystander_served(&s.router, &alice, "abandoned uploads").await;

    // Files over UPLOAD_MAX_FILE_BYTES, cut off by the router as they stream.
    for _ in 0..ROUNDS {
        let refused = s.router.upload(&mallory, UPLOAD, "big.txt", &[b'a'; 5000]).await;
        assert_eq!(refused.status(), 413);
    }
    assert_bystander_served(&s.router, &alice, "files over the limit").await;

    // Files mapped to variables that are not uploads, or to none the operation declares:
    // refused before any subgraph sees them.
    let create = "mutation($title: String!) { createTask(input: { title: $title }) { id } }";
    let delete = "mutation($password: String!) { deleteAccount(password: $password) }";
    for _ in 0..ROUNDS {
        let cases = [
            (json!({ "query": create, "variables": { "title": null } }), json!({ "0": ["variables.title"] })),
            (json!({ "query": delete, "variables": { "password": null } }), json!({ "0": ["variables.password"] })),
            (
                json!({ "query": create, "variables": { "title": "a title", "sneaky": null } }),
                json!({ "0": ["variables.sneaky"] }),
            ),
            (json!({ "query": UPLOAD, "variables": { "file": [null] } }), json!({ "0": ["variables.file.0"] })),
        ];
        for (operations, map) in cases {
            let refused = upload_mapped(&s.router, &mallory, operations.clone(), map).await;
            assert_eq!(code(&refused), "BAD_USER_INPUT", "{operations}: {refused}");
            assert!(refused.get("data").is_none(), "{refused}");
        }
    }
    assert_eq!(own_task_count(&s.router, &mallory).await, 0, "no task was created");
    assert_bystander_served(&s.router, &alice, "files mapped to other variables").await;

    // Answers over SUBGRAPH_MAX_RESPONSE_BYTES because of what the query asked for.
    let description = "d".repeat(3000);
    for title in ["one", "two"] {
        let input = json!({ "title": title, "description": description });
        let created = s
            .router
            .graphql(
                Some(&mallory),
                "mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        assert!(created.get("errors").is_none(), "{created}");
    }
    for _ in 0..ROUNDS {
        let large = "{ tasks { edges { node { description } } } }";
        let cut = s.router.graphql(Some(&mallory), large, json!({})).await;
        assert_eq!(code(&cut), "PAYLOAD_TOO_LARGE", "{cut}");
        assert_eq!(cut["errors"][0]["path"], json!(["tasks"]), "{cut}");
    }
    assert_bystander_served(&s.router, &alice, "answers over the limit").await;
    // The uploads that could go through still do.
    let fine = s.router.upload(&mallory, UPLOAD, "small.txt", b"small").await;
    assert_eq!(fine.status(), 200);
}
