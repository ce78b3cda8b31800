//! Rate limits at the edge: per IP, per user, per sensitive operation, behind
//! proxies, and shared across replicas through Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use kit::testing::{Isolation, TestIssuer, redis_url};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{RouterClient, SupergraphFile, TestSubgraph, compose, repo_path, spawn_router, spawn_subgraph};

struct Greeting;

#[Object(name = "Query")]
impl Greeting {
    async fn hello(&self) -> &str {
        "hi"
    }
}

/// What a router over a one-field subgraph keeps alive.
type Kept = (SupergraphFile, TestSubgraph);

/// A router over a one-field subgraph, with `vars` on top.
async fn greeting_router(vars: &[(&str, String)]) -> (RouterClient, Kept) {
    let subgraph =
        spawn_subgraph(Schema::build(Greeting, EmptyMutation, EmptySubscription).enable_federation().finish()).await;
    let supergraph = SupergraphFile::new(&compose(&[("greeting", subgraph.sdl.clone(), subgraph.url.clone())]));
    (spawn_router(supergraph.path.clone(), vars).await, (supergraph, subgraph))
}

async fn hello(router: &RouterClient, forwarded_for: Option<&str>, token: Option<&str>) -> reqwest::Response {
    let mut request = router.http.post(router.url("/graphql")).json(&json!({ "query": "{ hello }" }));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request sent")
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

async fn assert_limited(response: reqwest::Response, policy: &str) {
    assert_eq!(response.status(), 429);
    let retry_after: u64 = header(&response, "retry-after").parse().expect("Retry-After in seconds");
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    assert!(
        header(&response, "ratelimit").contains(&format!("\"{policy}\";r=0")),
        "{}",
        header(&response, "ratelimit")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{body}");
    assert!(body.get("data").is_none(), "{body}");
}

#[tokio::test]
async fn each_ip_has_a_bucket_and_clients_see_their_budget() {
    let (router, _supergraph) = greeting_router(&[("RATE_LIMIT_IP", "2/1h".into())]).await;

    let first = hello(&router, None, None).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "ratelimit-policy"), r#""ip";q=2;w=3600"#);
    assert!(header(&first, "ratelimit").starts_with(r#""ip";r=1;t="#), "{}", header(&first, "ratelimit"));
    assert_eq!(first.json::<Value>().await.unwrap(), json!({ "data": { "hello": "hi" } }));
    assert_eq!(hello(&router, None, None).await.status(), 200);

    // Without a trusted proxy, X-Forwarded-For is the client's word: no fresh bucket for it.
    assert_limited(hello(&router, Some("198.51.100.1"), None).await, "ip").await;

    let metrics = router.http.get(router.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"rate_limited_total{policy="ip"}"#), "{metrics}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_limited() {
    let (router, _supergraph) =
        greeting_router(&[("RATE_LIMIT_IP", "2/1h".into()), ("TRUSTED_PROXIES", "127.0.0.0/8".into())]).await;

    for _ in 0..2 {
        assert_eq!(hello(&router, Some("198.51.100.1"), None).await.status(), 200);
    }
    assert_limited(hello(&router, Some("198.51.100.1"), None).await, "ip").await;
    // Another client behind the same proxy has its own bucket...
    assert_eq!(hello(&router, Some("198.51.100.2"), None).await.status(), 200);
    // ...and a spoofed entry to the left of the real one changes nothing.
    assert_limited(hello(&router, Some("203.0.113.9, 198.51.100.1"), None).await, "ip").await;
}

#[tokio::test]
async fn each_user_has_a_bucket_and_bad_tokens_still_cost() {
    let issuer = TestIssuer::start().await;
    let (router, _supergraph) = greeting_router(&[
        ("JWKS_URL", issuer.jwks_url.clone()),
        ("RATE_LIMIT_USER", "2/1h".into()),
        ("RATE_LIMIT_IP", "7/1h".into()),
    ])
    .await;
    let (alice, bob) = (issuer.token(Uuid::new_v4()), issuer.token(Uuid::new_v4()));

    let first = hello(&router, None, Some(&alice)).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "ratelimit-policy"), r#""ip";q=7;w=3600, "user";q=2;w=3600"#);
    assert_eq!(hello(&router, None, Some(&alice)).await.status(), 200);
    assert_limited(hello(&router, None, Some(&alice)).await, "user").await;
    assert_eq!(hello(&router, None, Some(&bob)).await.status(), 200, "another user's bucket");
    assert_eq!(hello(&router, None, None).await.status(), 200, "anonymous: per IP only");

    // Guessing tokens is charged to the IP like anything else (5 used so far).
    for _ in 0..2 {
        assert_eq!(hello(&router, None, Some("not-a-token")).await.status(), 401);
    }
    assert_limited(hello(&router, None, Some("not-a-token")).await, "ip").await;
}

/// The real supergraph (auth's `login`, `register`, `refreshToken`); auth itself
/// is never reached in these tests, since a refused operation calls no subgraph.
async fn auth_router(vars: &[(&str, String)]) -> RouterClient {
    let mut all = vec![("SUBGRAPH_AUTH_URL", "http://127.0.0.1:9/graphql".to_owned())];
    all.extend(vars.iter().cloned());
    spawn_router(repo_path("schema/supergraph.graphql"), &all).await
}

const LOGIN: &str = r#"login(email: "a@example.com", password: "wrong password") { accessToken }"#;

#[tokio::test]
async fn login_and_register_are_limited_per_field_whatever_the_alias_fragment_or_batch() {
    let router = auth_router(&[("RATE_LIMIT_LOGIN", "4/15m".into())]).await;

    // Two aliased logins cost two.
    let aliased = router.post(None, json!({ "query": format!("mutation {{ a: {LOGIN} b: {LOGIN} }}") })).await;
    assert_eq!(aliased.status(), 200);
    assert!(header(&aliased, "ratelimit").contains(r#""login";r=2"#), "{}", header(&aliased, "ratelimit"));
    // A login hidden in a fragment, and a register in a batch: one each.
    let fragment = format!("mutation Innocent {{ ...F }} fragment F on Mutation {{ {LOGIN} }}");
    let register = r#"mutation { register(email: "b@example.com", password: "long enough password") { accessToken } }"#;
    let batch = router.post(None, json!([{ "query": fragment }, { "query": register }])).await;
    assert_eq!(batch.status(), 200);
    assert!(header(&batch, "ratelimit").contains(r#""login";r=0"#), "{}", header(&batch, "ratelimit"));

    // The quota is spent: the next login is refused without reaching auth.
    assert_limited(router.post(None, json!({ "query": format!("mutation {{ {LOGIN} }}") })).await, "login").await;
    // A batch of only refused operations is refused as a whole; each says why.
    let refused_batch =
        router.post(None, json!([{ "query": format!("mutation {{ {LOGIN} }}") }, { "query": register }])).await;
    assert_eq!(refused_batch.status(), 429);
    let body: Value = refused_batch.json().await.unwrap();
    for item in body.as_array().unwrap() {
        assert_eq!(item["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{body}");
    }
    // Other operations are not held back by the login policy.
    let other = router.graphql(None, "{ __typename }", json!({})).await;
    assert_eq!(other, json!({ "data": { "__typename": "Query" } }));
}

#[tokio::test]
async fn refresh_token_has_its_own_limit() {
    let router = auth_router(&[("RATE_LIMIT_REFRESH", "1/15m".into()), ("RATE_LIMIT_LOGIN", "1/15m".into())]).await;
    let refresh = r#"mutation { refreshToken(token: "x") { accessToken } }"#;
    assert_eq!(router.post(None, json!({ "query": refresh })).await.status(), 200);
    assert_limited(router.post(None, json!({ "query": refresh })).await, "refresh").await;
    // The login bucket is untouched.
    assert_eq!(router.post(None, json!({ "query": format!("mutation {{ {LOGIN} }}") })).await.status(), 200);
}

#[tokio::test]
async fn with_redis_the_limit_holds_across_replicas() {
    let isolation = Isolation::new("ratelimit");
    let vars = [
        ("RATE_LIMIT_STORE", "redis".to_owned()),
        ("RATE_LIMIT_REDIS_URL", redis_url()),
        ("RATE_LIMIT_KEY_PREFIX", format!("{}ratelimit", isolation.cache_prefix)),
        ("RATE_LIMIT_IP", "3/1h".to_owned()),
    ];
    let (one, _s1) = greeting_router(&vars).await;
    let (two, _s2) = greeting_router(&vars).await;

    assert_eq!(hello(&one, None, None).await.status(), 200);
    assert_eq!(hello(&two, None, None).await.status(), 200);
    let third = hello(&one, None, None).await;
    assert_eq!(third.status(), 200);
    assert!(header(&third, "ratelimit").starts_with(r#""ip";r=0;"#), "{}", header(&third, "ratelimit"));
    assert_limited(hello(&two, None, None).await, "ip").await;
    assert_limited(hello(&one, None, None).await, "ip").await;
}

#[tokio::test]
async fn without_redis_each_replica_falls_back_to_its_own_buckets() {
    let (router, _supergraph) = greeting_router(&[
        ("RATE_LIMIT_STORE", "redis".to_owned()),
        ("RATE_LIMIT_REDIS_URL", "redis://127.0.0.1:9".to_owned()),
        ("RATE_LIMIT_IP", "2/1h".to_owned()),
    ])
    .await;
    for _ in 0..2 {
        let response = hello(&router, None, None).await;
        assert_eq!(response.status(), 200, "Redis being down never fails a request");
        assert_eq!(response.json::<Value>().await.unwrap(), json!({ "data": { "hello": "hi" } }));
    }
    assert_limited(hello(&router, None, None).await, "ip").await;
}

#[tokio::test]
async fn limits_can_be_turned_off() {
    let (router, _supergraph) =
        greeting_router(&[("RATE_LIMIT_ENABLED", "false".into()), ("RATE_LIMIT_IP", "1/1h".into())]).await;
    for _ in 0..3 {
        let response = hello(&router, None, None).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("ratelimit").is_none());
    }
}

/// Plays the auth subgraph for password fields: counts what reaches it and
/// answers every password check with `false`.
async fn counting_auth() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::post(move |body: String| {
            counter.fetch_add(1, Ordering::SeqCst);
            let field = if body.contains("deleteAccount") { "deleteAccount" } else { "changePassword" };
            async move { axum::Json(json!({ "data": { field: false } })) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

const CHANGE_PASSWORD: &str =
    r#"mutation { changePassword(currentPassword: "a guess", newPassword: "a new password") }"#;
const DELETE_ACCOUNT: &str = r#"mutation { deleteAccount(password: "a guess") }"#;

async fn guess(router: &RouterClient, query: &str, ip: &str, token: &str) -> reqwest::Response {
    let request = router.http.post(router.url("/graphql")).json(&json!({ "query": query }));
    request.header("x-forwarded-for", ip).bearer_auth(token).send().await.expect("request sent")
}

#[tokio::test]
async fn password_checks_are_limited_per_ip_and_per_user_before_reaching_auth() {
    let issuer = TestIssuer::start().await;
    let (auth_url, calls) = counting_auth().await;
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[
            ("SUBGRAPH_AUTH_URL", auth_url),
            ("JWKS_URL", issuer.jwks_url.clone()),
            ("TRUSTED_PROXIES", "127.0.0.0/8".into()),
            ("RATE_LIMIT_PASSWORD", "3/15m".into()),
        ],
    )
    .await;
    let (alice, bob, carol) =
        (issuer.token(Uuid::new_v4()), issuer.token(Uuid::new_v4()), issuer.token(Uuid::new_v4()));

    // Alice spends her three guesses from one IP, on either field.
    for query in [CHANGE_PASSWORD, DELETE_ACCOUNT, CHANGE_PASSWORD] {
        let answered = guess(&router, query, "198.51.100.1", &alice).await;
        assert_eq!(answered.status(), 200);
        assert!(header(&answered, "ratelimit-policy").contains(r#""password";q=3;w=900"#));
    }
    // A fresh IP buys her no more: her own bucket is empty.
    assert_limited(guess(&router, DELETE_ACCOUNT, "198.51.100.2", &alice).await, "password").await;
    // Nor does a fresh account on her spent IP: that IP's bucket is empty too.
    assert_limited(guess(&router, CHANGE_PASSWORD, "198.51.100.1", &bob).await, "password").await;
    assert_eq!(calls.load(Ordering::SeqCst), 3, "refused guesses never reach auth");

    // Someone else, elsewhere, still gets through; other operations are not held back.
    let other = guess(&router, CHANGE_PASSWORD, "198.51.100.3", &carol).await;
    assert_eq!(other.status(), 200);
    assert_eq!(other.json::<Value>().await.unwrap(), json!({ "data": { "changePassword": false } }));
    assert_eq!(guess(&router, "{ __typename }", "198.51.100.1", &alice).await.status(), 200);
    let metrics = router.http.get(router.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"rate_limited_total{policy="password"}"#), "{metrics}");
}

#[tokio::test]
async fn password_checks_in_one_operation_cost_one_each() {
    let (auth_url, calls) = counting_auth().await;
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[("SUBGRAPH_AUTH_URL", auth_url), ("JWKS_URL", "none".into()), ("RATE_LIMIT_PASSWORD", "3/15m".into())],
    )
    .await;
    let guesses = (0..4).map(|i| format!(r#"g{i}: deleteAccount(password: "guess {i}")"#)).collect::<Vec<_>>();
    let aliased = router.post(None, json!({ "query": format!("mutation {{ {} }}", guesses.join(" ")) })).await;
    assert_limited(aliased, "password").await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
