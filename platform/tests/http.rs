//! The platform's HTTP server over real TCP sockets: idle and slow connections are
//! closed, connections and requests in flight are capped, a request past
//! REQUEST_TIMEOUT gets a GraphQL error, shutdown first turns readiness 503
//! for SHUTDOWN_DELAY and then drains, and routes wrapped in `router_only`
//! answer only requests that carry the router's secret.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use platform::Env;
use platform::config::{HttpSettings, Secret, SubgraphSecret};
use platform::health::Health;
use platform::http::Server;
use platform::testing::eventually;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Far longer than any test waits: a bound that must not be what closes a connection.
const LONG: &str = "60s";
/// How long a test waits for what must happen within a short timeout.
const GENEROUS: Duration = Duration::from_secs(10);
const LIVE_REQUEST: &[u8] = b"GET /health/live HTTP/1.1\r\nhost: test\r\n\r\n";

/// A request to `/slow` waits until the test lets it through, and counts itself.
#[derive(Clone)]
struct Gate {
    entered: Arc<AtomicUsize>,
    release: Arc<Semaphore>,
}

impl Gate {
    fn new() -> Self {
        Self { entered: Default::default(), release: Arc::new(Semaphore::new(0)) }
    }

    fn release_all(&self) {
        self.release.add_permits(1000);
    }

    async fn until_entered(&self, n: usize) {
        eventually("requests reach the slow route", || async { self.entered.load(Ordering::SeqCst) >= n }).await;
    }
}

struct TestServer {
    address: SocketAddr,
    admin_port: u16,
    gate: Gate,
    shutdown: CancellationToken,
    served: tokio::task::JoinHandle<()>,
}

impl TestServer {
    async fn start(vars: &[(&str, &str)]) -> Self {
        Self::start_with(vars, &SubgraphSecret::Disabled).await
    }

    /// With the service's routes answered only for `secret` (see `platform::http::router_only`).
    async fn start_with(vars: &[(&str, &str)], secret: &SubgraphSecret) -> Self {
        let mut env = Env::from_pairs([("HOST", "127.0.0.1"), ("PORT", "0"), ("SHUTDOWN_DELAY", "0s")]);
        for (name, value) in vars {
            env.set(name, *value);
        }
        let settings = HttpSettings::from_env(&mut env, 0);
        env.finish().expect("test settings are valid");
        let gate = Gate::new();
        let slow_gate = gate.clone();
        let routes = Router::new()
            .route("/peer", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }))
            .route("/never", get(std::future::pending::<()>))
            .route(
                "/slow",
                get(move || async move {
                    slow_gate.entered.fetch_add(1, Ordering::SeqCst);
                    let _permit = slow_gate.release.acquire().await.expect("never closed");
                    "done"
                }),
            );
        let routes = platform::http::router_only("test", routes, secret);
        let server = Server::bind("test", routes, Health::new("test", vec![]), &settings).await.expect("binds");
        let address = server.local_addr().expect("bound");
        let admin_port = server.admin_port().expect("an admin listener");
        let shutdown = CancellationToken::new();
        let served = tokio::spawn(server.serve(shutdown.clone()));
        Self { address, admin_port, gate, shutdown, served }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.address).await.expect("connects")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.gate.release_all();
        self.shutdown.cancel();
    }
}

/// Reads until the server closes the connection; `None` if it is still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    });
    read.await.ok().map(|()| received)
}

/// Reads one response (head and a `Content-Length` body) on a kept-alive connection.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(GENEROUS, stream.read(&mut buffer)).await.expect("an answer").expect("reads");
        assert!(n > 0, "closed before the response was complete: {:?}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
        let length = head
            .lines()
            .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length: ")?.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if body.len() >= length {
            return text;
        }
    }
}

#[tokio::test]
async fn a_socket_that_sends_nothing_is_closed_within_the_header_read_timeout() {
    let server = TestServer::start(&[("HEADER_READ_TIMEOUT", "300ms"), ("KEEP_ALIVE_TIMEOUT", LONG)]).await;
    let mut silent = server.connect().await;

    let received = closed_within(&mut silent, GENEROUS).await;

    assert_eq!(received, Some(Vec::new()), "closed, without an answer");
}

#[tokio::test]
async fn half_a_request_head_is_closed_within_the_header_read_timeout() {
    let server = TestServer::start(&[("HEADER_READ_TIMEOUT", "300ms"), ("KEEP_ALIVE_TIMEOUT", LONG)]).await;
    let mut slow = server.connect().await;
    slow.write_all(b"GET /health/live HTTP/1.1\r\nhost: test\r\nx-slow: ").await.unwrap();

    assert!(closed_within(&mut slow, GENEROUS).await.is_some(), "a head never finished is not waited for");
}

#[tokio::test]
async fn half_a_head_after_a_response_gets_the_header_read_timeout_not_the_keep_alive_one() {
    let server = TestServer::start(&[("HEADER_READ_TIMEOUT", "300ms"), ("KEEP_ALIVE_TIMEOUT", LONG)]).await;
    let mut client = server.connect().await;
    client.write_all(LIVE_REQUEST).await.unwrap();
    assert!(read_response(&mut client).await.starts_with("HTTP/1.1 200"));

    client.write_all(b"GET /health/live HTTP/1.1\r\nhost: te").await.unwrap();

    assert!(closed_within(&mut client, GENEROUS).await.is_some(), "closed long before KEEP_ALIVE_TIMEOUT");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let server = TestServer::start(&[("HEADER_READ_TIMEOUT", LONG), ("KEEP_ALIVE_TIMEOUT", "300ms")]).await;
    let mut client = server.connect().await;
    client.write_all(LIVE_REQUEST).await.unwrap();
    let first = read_response(&mut client).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");

    assert_eq!(closed_within(&mut client, GENEROUS).await, Some(Vec::new()), "closed once idle, long before 60 s");
}

#[tokio::test]
async fn a_connection_serving_a_slow_request_is_not_closed_by_the_idle_timeouts() {
    let server = TestServer::start(&[("HEADER_READ_TIMEOUT", "100ms"), ("KEEP_ALIVE_TIMEOUT", "100ms")]).await;
    let mut client = server.connect().await;
    client.write_all(b"GET /slow HTTP/1.1\r\nhost: test\r\n\r\n").await.unwrap();
    server.gate.until_entered(1).await;

    // The condition itself is time passing: several idle timeouts while the request runs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.gate.release_all();

    let response = read_response(&mut client).await;
    assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("done"), "{response}");
}

#[tokio::test]
async fn requests_over_max_in_flight_get_503_with_retry_after_while_health_still_answers() {
    let server = TestServer::start(&[("MAX_IN_FLIGHT", "2")]).await;
    let http = reqwest::Client::new();
    let slow: Vec<_> = (0..2).map(|_| tokio::spawn(http.get(server.url("/slow")).send())).collect();
    server.gate.until_entered(2).await;

    let refused = http.get(server.url("/slow")).send().await.unwrap();
    let live = http.get(server.url("/health/live")).send().await.unwrap();
    let ready = http.get(server.url("/health/ready")).send().await.unwrap();

    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(refused.headers()["content-type"], "application/json");
    assert!(refused.headers().contains_key("x-request-id"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE", "{body}");
    assert_eq!(server.gate.entered.load(Ordering::SeqCst), 2, "the refused request never reached its handler");
    assert_eq!((live.status().as_u16(), ready.status().as_u16()), (200, 200), "probes are exempt");

    server.gate.release_all();
    for request in slow {
        assert_eq!(request.await.unwrap().unwrap().status(), 200);
    }
    assert_eq!(http.get(server.url("/slow")).send().await.unwrap().status(), 200, "slots are given back");
}

#[tokio::test]
async fn connections_over_max_connections_wait_until_one_closes() {
    let server = TestServer::start(&[("MAX_CONNECTIONS", "2"), ("HEADER_READ_TIMEOUT", LONG)]).await;
    let mut held = vec![server.connect().await, server.connect().await];
    held[0].write_all(LIVE_REQUEST).await.unwrap();
    assert!(read_response(&mut held[0]).await.starts_with("HTTP/1.1 200"), "the first two are served");

    let mut waiting = server.connect().await;
    waiting.write_all(LIVE_REQUEST).await.unwrap();
    let mut byte = [0u8; 1];
    // An absence: it must not be answered while both slots are taken.
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut byte)).await;
    assert!(early.is_err(), "the third connection waits in the backlog, unanswered");

    drop(held.pop());
    let response = read_response(&mut waiting).await;
    assert!(response.starts_with("HTTP/1.1 200"), "served once a slot is free: {response}");
}

#[tokio::test]
async fn a_request_past_request_timeout_gets_504_with_a_graphql_error() {
    let server = TestServer::start(&[("REQUEST_TIMEOUT", "200ms")]).await;

    let response = reqwest::get(server.url("/never")).await.unwrap();

    assert_eq!(response.status(), 504);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    let message = "The request took longer than REQUEST_TIMEOUT (200ms)";
    assert_eq!(body, json!({ "errors": [{ "message": message, "extensions": { "code": "REQUEST_TIMEOUT" } }] }));
}

#[tokio::test]
async fn handlers_see_the_peer_address() {
    let server = TestServer::start(&[]).await;
    let mut client = server.connect().await;
    let local = client.local_addr().unwrap();
    client.write_all(b"GET /peer HTTP/1.1\r\nhost: test\r\n\r\n").await.unwrap();

    let response = read_response(&mut client).await;

    assert!(response.ends_with(&local.to_string()), "{response}");
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish_and_stops_accepting() {
    let server = TestServer::start(&[("SHUTDOWN_GRACE", LONG)]).await;
    let in_flight = tokio::spawn(reqwest::get(server.url("/slow")));
    let mut idle = server.connect().await;
    server.gate.until_entered(1).await;

    server.shutdown.cancel();

    let address = server.address;
    eventually("the listener to close", || async move { TcpStream::connect(address).await.is_err() }).await;
    assert!(closed_within(&mut idle, GENEROUS).await.is_some(), "an idle connection is closed at once");
    assert!(!server.served.is_finished(), "still draining");
    server.gate.release_all();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done", "answered in full");
    eventually("serving to end", || async { server.served.is_finished() }).await;
}

#[tokio::test]
async fn shutdown_drops_what_is_still_running_after_the_grace_period() {
    let server = TestServer::start(&[("SHUTDOWN_GRACE", "200ms")]).await;
    let stuck = tokio::spawn(reqwest::get(server.url("/slow")));
    server.gate.until_entered(1).await;

    server.shutdown.cancel();

    eventually("serving to end", || async { server.served.is_finished() }).await;
    assert!(stuck.await.unwrap().is_err(), "its connection was closed unanswered");
}

#[tokio::test]
async fn shutdown_first_answers_ready_503_for_the_delay_while_live_and_requests_carry_on() {
    let server = TestServer::start(&[("SHUTDOWN_DELAY", "1s"), ("SHUTDOWN_GRACE", LONG)]).await;
    let http = reqwest::Client::new();
    let in_flight = tokio::spawn(http.get(server.url("/slow")).send());
    server.gate.until_entered(1).await;
    assert_eq!(http.get(server.url("/health/ready")).send().await.unwrap().status(), 200);

    server.shutdown.cancel();

    let ready_url = server.url("/health/ready");
    let body: Value = platform::testing::wait_for("readiness to turn 503", || async {
        let ready = http.get(&ready_url).send().await.ok()?;
        (ready.status() == 503).then_some(())?;
        ready.json().await.ok()
    })
    .await;
    assert_eq!(body, json!({ "status": "draining", "service": "test" }));
    assert_eq!(http.get(server.url("/health/live")).send().await.unwrap().status(), 200, "not to be restarted");
    let admin = format!("http://127.0.0.1:{}/health/ready", server.admin_port);
    assert_eq!(http.get(admin).send().await.unwrap().status(), 503, "on the admin listener too");
    assert!(!server.served.is_finished(), "still accepting during the delay");
    server.gate.release_all();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!((response.status().as_u16(), response.text().await.unwrap()), (200, "done".to_owned()));
    let address = server.address;
    eventually("the listener to close after the delay", || async move { TcpStream::connect(address).await.is_err() })
        .await;
    eventually("serving to end", || async { server.served.is_finished() }).await;
}

#[tokio::test]
async fn routes_for_the_router_only_refuse_a_missing_or_wrong_secret_with_403_and_probes_stay_open() {
    let secret = "the-router-secret-0123456789abcdef0123456789";
    let server = TestServer::start_with(&[], &SubgraphSecret::Required(Secret::new(secret))).await;
    let http = reqwest::Client::new();
    server.gate.release_all();
    let slow = |value: Option<&str>| {
        let mut request = http.get(server.url("/slow"));
        if let Some(value) = value {
            request = request.header("x-taskgraph-router-secret", value);
        }
        request.send()
    };

    for (what, sent) in [("no secret", None), ("a wrong one", Some("the-router-secret-0123456789abcdef012345678X"))] {
        let refused = slow(sent).await.unwrap();
        assert_eq!(refused.status(), 403, "{what}");
        assert_eq!(refused.headers()["content-type"], "application/json", "{what}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{what}: {body}");
    }
    assert_eq!(server.gate.entered.load(Ordering::SeqCst), 0, "no refused request reached its handler");
    let accepted = slow(Some(secret)).await.unwrap();
    assert_eq!((accepted.status().as_u16(), accepted.text().await.unwrap()), (200, "done".to_owned()));
    for probe in ["/health/live", "/health/ready"] {
        assert_eq!(http.get(server.url(probe)).send().await.unwrap().status(), 200, "{probe} needs no secret");
    }
    let metrics = http.get(format!("http://127.0.0.1:{}/metrics", server.admin_port)).send().await.unwrap();
    assert_eq!(metrics.status(), 200, "nor does /metrics");
    let refusals = platform::testing::metric("http_requests_without_router_secret_total", &[("service", "test")]);
    assert!(refusals >= 2.0, "counted: {refusals}");
}
