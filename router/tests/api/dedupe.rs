//! In-flight deduplication (`REQUEST_DEDUPE`, `SUBGRAPH_DEDUPE`): identical
//! queries of one client share one execution and one subgraph exchange; other
//! users' queries and mutations never do. The subgraph holds every answer until
//! the test lets it go, and the tests wait on what they can observe (requests
//! received, the dedupe counters), never on time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use kit::testing::eventually;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::helpers::{RouterClient, SupergraphFile, compose, spawn_router};

/// The request-level counter has no label: the tests that read it take turns.
static REQUEST_COUNTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A subgraph that counts the requests it receives and answers none until released.
struct HeldSubgraph {
    url: String,
    received: Arc<AtomicUsize>,
    authorizations: Arc<Mutex<Vec<String>>>,
    gate: Arc<Semaphore>,
    _stop: DropGuard,
}

impl HeldSubgraph {
    async fn spawn() -> Self {
        let (received, gate) = (Arc::new(AtomicUsize::new(0)), Arc::new(Semaphore::new(0)));
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let (count, hold, seen) = (received.clone(), gate.clone(), authorizations.clone());
        let app = axum::Router::new().route(
            "/graphql",
            axum::routing::post(move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                let (count, hold, seen) = (count.clone(), hold.clone(), seen.clone());
                async move {
                    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                    seen.lock().unwrap().push(authorization.to_owned());
                    count.fetch_add(1, Ordering::SeqCst);
                    let _pass = hold.acquire().await.unwrap();
                    let query = body["query"].as_str().unwrap_or("");
                    let who = authorization.strip_prefix("Bearer ").unwrap_or("anonymous");
                    let data = if query.contains("bump") { json!({ "bump": who }) } else { json!({ "whoami": who }) };
                    axum::Json(json!({ "data": data }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/graphql", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        tokio::spawn(axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned()).into_future());
        Self { url, received, authorizations, gate, _stop: stop.drop_guard() }
    }

    fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }

    async fn until_received(&self, count: usize) {
        eventually(&format!("the subgraph to receive {count} requests"), || async { self.received() >= count }).await;
    }

    /// Lets every held answer, and every later one, go.
    fn release(&self) {
        self.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    }
}

const SDL: &str = "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.3\", import: [\"@key\"])\ntype Query { whoami: String }\ntype Mutation { bump: String }";

/// The router over one held subgraph named `name` (its label in the metrics).
async fn start(name: &str, vars: &[(&str, &str)]) -> (HeldSubgraph, RouterClient, SupergraphFile) {
    let subgraph = HeldSubgraph::spawn().await;
    let supergraph = SupergraphFile::new(&compose(&[(name, SDL.to_owned(), subgraph.url.clone())]));
    // Tokens pass unchecked: two bearer tokens are two users to the subgraph.
    let mut all = vec![("JWKS_URL", "none".to_owned())];
    all.extend(vars.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let router = spawn_router(supergraph.path.clone(), &all).await;
    (subgraph, router, supergraph)
}

fn ask(router: &RouterClient, token: &str, query: &str) -> tokio::task::JoinHandle<Value> {
    let (http, url, token, query) = (router.http.clone(), router.url("/graphql"), token.to_owned(), query.to_owned());
    tokio::spawn(async move {
        let response = http.post(url).bearer_auth(token).json(&json!({ "query": query })).send().await.unwrap();
        response.json().await.unwrap()
    })
}

async fn counter(router: &RouterClient, series: &str) -> f64 {
    let metrics = router.http.get(router.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    metrics.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok()).unwrap_or(0.0)
}

const REQUESTS: &str = "router_requests_deduplicated_total ";

fn fetches(subgraph: &str) -> String {
    format!("subgraph_fetches_deduplicated_total{{subgraph=\"{subgraph}\"}} ")
}

#[tokio::test]
async fn two_identical_queries_of_one_user_reach_the_subgraph_once() {
    let _turn = REQUEST_COUNTER.lock().await;
    let (subgraph, router, _supergraph) = start("dd_same_user", &[]).await;
    let before = counter(&router, REQUESTS).await;

    let first = ask(&router, "ada", "{ whoami }");
    subgraph.until_received(1).await;
    let second = ask(&router, "ada", "{ whoami }");
    eventually("the second query to join the first", || async { counter(&router, REQUESTS).await > before }).await;
    subgraph.release();

    for answer in [first.await.unwrap(), second.await.unwrap()] {
        assert_eq!(answer, json!({ "data": { "whoami": "ada" } }));
    }
    assert_eq!(subgraph.received(), 1);
}

#[tokio::test]
async fn two_users_identical_queries_reach_the_subgraph_twice() {
    let (subgraph, router, _supergraph) = start("dd_two_users", &[]).await;

    let ada = ask(&router, "ada", "{ whoami }");
    let alan = ask(&router, "alan", "{ whoami }");
    subgraph.until_received(2).await;
    subgraph.release();

    assert_eq!(ada.await.unwrap(), json!({ "data": { "whoami": "ada" } }));
    assert_eq!(alan.await.unwrap(), json!({ "data": { "whoami": "alan" } }));
    let mut seen = subgraph.authorizations.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["Bearer ada", "Bearer alan"]);
}

#[tokio::test]
async fn identical_mutations_are_never_shared() {
    let (subgraph, router, _supergraph) = start("dd_mutations", &[]).await;

    let first = ask(&router, "ada", "mutation { bump }");
    let second = ask(&router, "ada", "mutation { bump }");
    subgraph.until_received(2).await;
    subgraph.release();

    for answer in [first.await.unwrap(), second.await.unwrap()] {
        assert_eq!(answer, json!({ "data": { "bump": "ada" } }));
    }
    assert_eq!(subgraph.received(), 2);
    assert_eq!(counter(&router, &fetches("dd_mutations")).await, 0.0);
}

#[tokio::test]
async fn with_both_levels_off_identical_queries_each_reach_the_subgraph() {
    let vars = [("REQUEST_DEDUPE", "false"), ("SUBGRAPH_DEDUPE", "false")];
    let (subgraph, router, _supergraph) = start("dd_off", &vars).await;

    let first = ask(&router, "ada", "{ whoami }");
    let second = ask(&router, "ada", "{ whoami }");
    subgraph.until_received(2).await;
    subgraph.release();

    for answer in [first.await.unwrap(), second.await.unwrap()] {
        assert_eq!(answer, json!({ "data": { "whoami": "ada" } }));
    }
    assert_eq!(counter(&router, &fetches("dd_off")).await, 0.0);
}

#[tokio::test]
async fn identical_fetches_share_one_exchange_without_request_dedupe() {
    let (subgraph, router, _supergraph) = start("dd_fetches", &[("REQUEST_DEDUPE", "false")]).await;
    let series = fetches("dd_fetches");

    let first = ask(&router, "ada", "{ whoami }");
    subgraph.until_received(1).await;
    let second = ask(&router, "ada", "{ whoami }");
    eventually("the second fetch to join the first", || async { counter(&router, &series).await == 1.0 }).await;
    subgraph.release();

    for answer in [first.await.unwrap(), second.await.unwrap()] {
        assert_eq!(answer, json!({ "data": { "whoami": "ada" } }));
    }
    assert_eq!(subgraph.received(), 1);
}

#[tokio::test]
async fn a_follower_whose_leader_went_away_still_gets_its_answer() {
    let _turn = REQUEST_COUNTER.lock().await;
    let (subgraph, router, _supergraph) = start("dd_cancelled", &[]).await;
    let before = counter(&router, REQUESTS).await;

    let leader = ask(&router, "ada", "{ whoami }");
    subgraph.until_received(1).await;
    let follower = ask(&router, "ada", "{ whoami }");
    eventually("the second query to join the first", || async { counter(&router, REQUESTS).await > before }).await;
    // The leader's client goes away: its connection closes, the router drops its request.
    leader.abort();
    subgraph.until_received(2).await;
    subgraph.release();

    assert_eq!(follower.await.unwrap(), json!({ "data": { "whoami": "ada" } }));
}
