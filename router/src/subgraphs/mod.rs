//! Calling subgraphs: pooled keep-alive HTTP/1.1 or HTTP/2, over TLS for
//! `https://` ones, JSON in and out, per-subgraph timeouts and connection caps,
//! a circuit breaker per subgraph, retries of queries within a budget,
//! identical query fetches in flight sharing one exchange, and only the
//! allow-listed client headers passed on.

pub mod breaker;
pub mod connector;
pub mod dedupe;
mod endpoint;
pub mod pool;

use std::borrow::Cow;
use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use metrics::{Histogram, SharedString};
use rand::Rng;
use serde_json::Value;
use tower::retry::budget::{Budget, TpsBudget};
use tracing::Instrument;

use crate::config::{BreakerSettings, RetrySettings};
use breaker::{Breakers, Permit, ProbeGuard};
pub use endpoint::Subgraph;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SubgraphError {
    #[error("timed out")]
    Timeout,
    #[error("unreachable")]
    Unreachable,
    #[error("answered HTTP {0} without a GraphQL response")]
    Status(u16),
    #[error("answered something that is not a GraphQL response")]
    Malformed,
    #[error("answered more than SUBGRAPH_MAX_RESPONSE_BYTES")]
    TooLarge,
    #[error("every connection to it is in use (SUBGRAPH_MAX_CONNECTIONS)")]
    Saturated,
    #[error("circuit open after repeated failures")]
    CircuitOpen,
    /// A second fetch wanted the files of a multipart request.
    #[error("the uploaded files were already sent")]
    UploadTaken,
}

impl SubgraphError {
    /// Worth another try: the request most likely never reached a resolver, or
    /// the subgraph said it is briefly unable. A timeout has spent its time already.
    fn retryable(&self) -> bool {
        matches!(self, SubgraphError::Unreachable | SubgraphError::Status(502..=504))
    }

    /// The subgraph's own fault, the only kind its circuit counts. An answer too
    /// large for what the query asked, or the router's own cap on connections,
    /// says nothing about the subgraph's health; counting them would let one
    /// client open the circuit for everyone.
    fn is_subgraph_fault(&self) -> bool {
        matches!(
            self,
            SubgraphError::Timeout | SubgraphError::Unreachable | SubgraphError::Status(_) | SubgraphError::Malformed
        )
    }
}

/// `SUBGRAPH_SHARED_SECRET` as a header value (marked sensitive, so no debug
/// print shows it), unless disabled.
pub fn secret_header(secret: &platform::config::SubgraphSecret) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(secret.secret()?.expose()).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Every request goes through its subgraph's [`pool::Pool`], which also sends the router's secret.
pub struct SubgraphClient {
    forward: Vec<HeaderName>,
    breakers: Breakers,
    retry: RetrySettings,
    budget: TpsBudget,
    /// Identical query fetches in flight share one exchange (`SUBGRAPH_DEDUPE`).
    dedupe: bool,
}

/// A subgraph's answer as it came, shared by the fetches of one exchange: each
/// decodes it for itself.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// What the followers of a deduplicated fetch get: the answer, or the error
/// that left none.
pub type Fetched = Result<RawAnswer, SubgraphError>;

impl SubgraphClient {
    pub fn new(forward_headers: &[String], breaker: BreakerSettings, retry: RetrySettings, dedupe: bool) -> Self {
        let forward = forward_headers
            .iter()
            .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
            .filter(|name| {
                let ok = pool::forwardable(name);
                if !ok {
                    tracing::warn!(header = %name, "FORWARD_HEADERS: a framing or hop-by-hop header is never forwarded");
                }
                ok
            })
            .collect();
        let budget = TpsBudget::new(Duration::from_secs(10), 10, retry.budget_ratio);
        Self { forward, breakers: Breakers::new(breaker), retry, budget, dedupe }
    }

    /// The state of `subgraph`'s circuit: `closed`, `half_open` or `open`.
    pub fn circuit(&self, subgraph: &str) -> &'static str {
        self.breakers.state_name(subgraph)
    }

    /// The client's headers that subgraphs may see.
    pub fn forwarded_headers(&self, incoming: &HeaderMap) -> HeaderMap {
        // Walking the client's few headers compares names; looking each
        // forwarded name up would hash it.
        let mut out = HeaderMap::new();
        for (name, value) in incoming {
            if self.forward.contains(name) {
                out.append(name.clone(), value.clone());
            }
        }
        out
    }

    /// Posts one GraphQL request (the body is already JSON). `idempotent`
    /// requests (queries) are retried on transport failures within the budget.
    pub async fn send(
        &self,
        subgraph: &Subgraph,
        body: impl Into<Bytes>,
        headers: &HeaderMap,
        idempotent: bool,
    ) -> Result<Value, SubgraphError> {
        self.send_decoded(subgraph, body.into(), headers, idempotent, parsed_answer).await
    }

    /// As [`send`](Self::send), the answer as `decode` reads it (see [`Decode`]).
    ///
    /// A query fetch identical to one in flight (same subgraph, body and
    /// headers, correlation headers aside: see [`dedupe`]) waits for that one's
    /// exchange and decodes its answer, or gets its error; it is not counted
    /// again by the breaker, the retry budget or the request durations.
    pub async fn send_decoded<T>(
        &self,
        subgraph: &Subgraph,
        body: Bytes,
        headers: &HeaderMap,
        idempotent: bool,
        decode: Decode<T>,
    ) -> Result<T, SubgraphError> {
        let leader = if idempotent && self.dedupe {
            // Keyed on the headers as the client's request gave them: with traces
            // on, each exchange gets a `traceparent` of its own.
            let mut key = Vec::with_capacity(body.len() + 64 * headers.len() + 16);
            dedupe::push_field(&mut key, &body);
            dedupe::push_headers(&mut key, headers);
            let joined = || {
                metrics::counter!("subgraph_fetches_deduplicated_total", "subgraph" => subgraph.label.clone())
                    .increment(1)
            };
            match subgraph.fetches.lead_or_follow(key, joined).await {
                Ok(leader) => leader,
                Err(shared) => return shared.and_then(|answer| decode(answer.status, answer.body)),
            }
        } else {
            None
        };
        // One call site: the fetch's future is large, and each more would grow this one.
        let mut answer = None;
        let keep = leader.as_ref().map(|_| &mut answer);
        let result = self.fetch(subgraph, &body, headers, idempotent, decode, keep).await;
        if let Some(leader) = leader {
            // Without an answer kept the fetch failed (a decoded one always keeps it).
            let failure = || result.as_ref().err().cloned().unwrap_or(SubgraphError::Malformed);
            leader.finish(&answer.ok_or_else(failure));
        }
        result
    }

    /// One fetch with its retries. `keep`, when given, receives the last
    /// exchange's answer as it came (none when it ended without one).
    async fn fetch<T>(
        &self,
        subgraph: &Subgraph,
        body: &Bytes,
        headers: &HeaderMap,
        idempotent: bool,
        decode: Decode<T>,
        mut keep: Option<&mut Option<RawAnswer>>,
    ) -> Result<T, SubgraphError> {
        self.budget.deposit();
        let mut retries = 0;
        loop {
            let span = fetch_span(subgraph);
            let headers = traced(headers, &span);
            let keep = keep.as_deref_mut();
            let exchange = async {
                let response = exchange_json(subgraph, body, &headers, idempotent).await?;
                if let Some(keep) = keep {
                    *keep = Some(RawAnswer { status: response.status, body: response.body.clone() });
                }
                decode(response.status, response.body)
            };
            let result = self.attempt(subgraph, exchange, None).instrument(span.clone()).await;
            record_outcome(&span, &result);
            match result {
                Err(e) if idempotent && e.retryable() && retries < self.retry.attempts && self.budget.withdraw() => {
                    retries += 1;
                    metrics::counter!("subgraph_retries_total", "subgraph" => subgraph.label.clone()).increment(1);
                    tokio::time::sleep(self.backoff(retries)).await;
                }
                result => return result,
            }
        }
    }

    /// Posts a GraphQL multipart request (file uploads), streaming its body; never retried.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_multipart<T>(
        &self,
        subgraph: &Subgraph,
        body: pool::OutBody,
        content_type: &str,
        headers: &HeaderMap,
        timeout: Duration,
        blame_client: &(dyn Fn() -> bool + Sync),
        decode: Decode<T>,
    ) -> Result<T, SubgraphError> {
        let span = fetch_span(subgraph);
        let headers = traced(headers, &span);
        let exchange = exchange_multipart(subgraph, body, &headers, content_type, timeout, decode);
        let result = self.attempt(subgraph, exchange, Some(blame_client)).instrument(span.clone()).await;
        record_outcome(&span, &result);
        result
    }

    fn backoff(&self, retry: u32) -> Duration {
        let base = self.retry.backoff.saturating_mul(1 << (retry - 1).min(10));
        base.mul_f64(rand::rng().random_range(0.5..1.5))
    }

    /// Runs one exchange with a subgraph under its circuit breaker, and records it.
    async fn attempt<T>(
        &self,
        subgraph: &Subgraph,
        exchange: impl Future<Output = Result<T, SubgraphError>>,
        blame_client: Option<&(dyn Fn() -> bool + Sync)>,
    ) -> Result<T, SubgraphError> {
        let permit = self.breakers.permit(&subgraph.name);
        if permit == Permit::Refused {
            metrics::counter!("subgraph_requests_refused_total", "subgraph" => subgraph.label.clone()).increment(1);
            return Err(SubgraphError::CircuitOpen);
        }
        let mut probe =
            ProbeGuard { breakers: &self.breakers, subgraph: &subgraph.name, armed: permit == Permit::Probe };
        let started = Instant::now();
        let result = exchange.await;
        // A failure the subgraph did not cause (a client that broke its own
        // upload, an answer too large, no free connection) is no outcome at all:
        // a probe that ends so is abandoned, and the next call probes instead.
        let healthy = match &result {
            Ok(_) => Some(true),
            Err(_) if blame_client.is_some_and(|blame| blame()) => None,
            Err(e) if e.is_subgraph_fault() => Some(false),
            Err(_) => None,
        };
        if let Some(healthy) = healthy {
            self.breakers.record(&subgraph.name, permit, healthy);
            probe.armed = false;
        }
        if matches!(result, Err(SubgraphError::Saturated)) {
            // Nothing was sent: no duration to record, and not the subgraph's doing.
            metrics::counter!("subgraph_connections_exhausted_total", "subgraph" => subgraph.label.clone())
                .increment(1);
            tracing::debug!(subgraph = %subgraph.name, "no connection to the subgraph came free in time");
            return result;
        }
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(SubgraphError::Timeout) => Outcome::Timeout,
            Err(_) => Outcome::Error,
        };
        subgraph.metrics.duration(&subgraph.label, outcome).record(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            if healthy == Some(false) {
                tracing::warn!(subgraph = %subgraph.name, error = %e, "subgraph request failed");
            } else {
                // Caused by the client: a line per request would let anyone flood the log.
                tracing::debug!(subgraph = %subgraph.name, error = %e, "subgraph request failed");
            }
        }
        result
    }
}

/// The span of one exchange with `subgraph` (each retry has its own), a child
/// of the request's; built only when traces are exported.
fn fetch_span(subgraph: &Subgraph) -> tracing::Span {
    tracing::info_span!(
        target: platform::telemetry::TRACE_ONLY,
        "subgraph",
        otel.kind = "client",
        otel.name = %format_args!("subgraph {}", subgraph.name),
        subgraph = %subgraph.name,
        server.address = subgraph.pool.host(),
        otel.status_code = tracing::field::Empty,
        error = tracing::field::Empty,
    )
}

/// The headers for a subgraph: with traces exported, a `traceparent` naming
/// the fetch's `span` in place of the client's, so the subgraph's span is its
/// child; otherwise the headers as they are, uncopied.
fn traced<'a>(headers: &'a HeaderMap, span: &tracing::Span) -> Cow<'a, HeaderMap> {
    if !platform::telemetry::tracing_enabled() {
        return Cow::Borrowed(headers);
    }
    let mut headers = headers.clone();
    platform::telemetry::inject(span, &mut headers);
    Cow::Owned(headers)
}

fn record_outcome<T>(span: &tracing::Span, result: &Result<T, SubgraphError>) {
    if let Err(e) = result {
        span.record("otel.status_code", "error");
        span.record("error", tracing::field::display(e));
    }
}

/// A multipart POST on a connection of its own, its body streamed as the
/// client's arrives, and its answer read up to the subgraph's body limit.
async fn exchange_multipart<T>(
    subgraph: &Subgraph,
    body: pool::OutBody,
    headers: &HeaderMap,
    content_type: &str,
    timeout: Duration,
    decode: Decode<T>,
) -> Result<T, SubgraphError> {
    let mut request_headers = headers.clone();
    let content_type = HeaderValue::from_str(content_type).map_err(|_| SubgraphError::Malformed)?;
    request_headers.insert(header::CONTENT_TYPE, content_type);
    request_headers.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT));
    let path = subgraph.pool.path_and_query().to_owned();
    let exchange = async {
        let response = subgraph.pool.stream(Method::POST, &path, request_headers, body).await.map_err(|e| match e {
            pool::StreamError::Saturated => SubgraphError::Saturated,
            e => {
                tracing::debug!(subgraph = %subgraph.name, error = %e, "subgraph upload failed");
                SubgraphError::Unreachable
            }
        })?;
        let answer = pool::read_answer(response, subgraph.pool.max_body()).await.map_err(transport_error(subgraph))?;
        decode(answer.status, answer.body)
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| SubgraphError::Timeout)?
}

/// One GraphQL POST over the subgraph's pooled connections, within its timeout.
async fn exchange_json(
    subgraph: &Subgraph,
    body: &Bytes,
    headers: &HeaderMap,
    idempotent: bool,
) -> Result<pool::Response, SubgraphError> {
    // Waiting for a connection is outside the subgraph's timeout: it is not the subgraph's time.
    let lease = subgraph.pool.lease().await.map_err(|_| SubgraphError::Saturated)?;
    // Boxed: the exchange's future is large, and the futures around it (the
    // attempt, its span, the retries) would otherwise copy it as each is built.
    let exchange = Box::pin(subgraph.pool.post(lease, headers, body, idempotent));
    tokio::time::timeout(subgraph.timeout, exchange)
        .await
        .map_err(|_| SubgraphError::Timeout)?
        .map_err(transport_error(subgraph))
}

/// The client-facing error says only "unreachable" (or "too large"); the log says why.
fn transport_error(subgraph: &Subgraph) -> impl Fn(pool::TransportError) -> SubgraphError + '_ {
    move |e| match e {
        pool::TransportError::TooLarge(_) => SubgraphError::TooLarge,
        e => {
            tracing::debug!(subgraph = %subgraph.name, error = %e, "subgraph exchange failed");
            SubgraphError::Unreachable
        }
    }
}

/// A subgraph's request durations by outcome, as handles registered at its
/// first request rather than looked up (hashing every label) per request.
#[derive(Debug, Default)]
pub struct SubgraphMetrics {
    durations: OnceLock<[Histogram; 3]>,
}

#[derive(Clone, Copy)]
enum Outcome {
    Success = 0,
    Timeout = 1,
    Error = 2,
}

impl SubgraphMetrics {
    /// Registers the subgraph's series at 0 (durations, retries, refusals,
    /// exhausted connections, deduplicated fetches, a closed circuit unless one is already
    /// recorded), so dashboards and alerts see 0 rather than nothing.
    pub fn register(&self, subgraph: &SharedString) {
        // Handles made before the recorder is installed would count nowhere.
        platform::metrics::handle();
        let _ = self.duration(subgraph, Outcome::Success);
        for counter in [
            "subgraph_retries_total",
            "subgraph_requests_refused_total",
            "subgraph_connections_exhausted_total",
            "subgraph_fetches_deduplicated_total",
        ] {
            metrics::counter!(counter, "subgraph" => subgraph.clone()).absolute(0);
        }
        metrics::gauge!("subgraph_circuit_state", "subgraph" => subgraph.clone()).increment(0.0);
    }

    fn duration(&self, subgraph: &SharedString, outcome: Outcome) -> &Histogram {
        let durations = self.durations.get_or_init(|| {
            ["success", "timeout", "error"].map(|outcome| {
                metrics::histogram!("subgraph_request_duration_seconds", "subgraph" => subgraph.clone(), "outcome" => outcome)
            })
        });
        &durations[outcome as usize]
    }
}

pub const ACCEPT: &str = "application/graphql-response+json, application/json";

/// Reads a subgraph's answer (HTTP status and body) as a GraphQL response, or
/// says why it is none. It runs within the exchange, so that an answer that is
/// not GraphQL counts against the subgraph's circuit breaker.
pub type Decode<T> = fn(StatusCode, Bytes) -> Result<T, SubgraphError>;

/// The answer parsed into a JSON tree.
pub fn parsed_answer(status: StatusCode, bytes: Bytes) -> Result<Value, SubgraphError> {
    // Checked as UTF-8 once, whole: a `&[u8]` reader checks each string on its own.
    let Ok(text) = std::str::from_utf8(&bytes) else { return Err(not_graphql(status)) };
    match serde_json::from_str::<Value>(text) {
        Ok(value) if value.get("data").is_some() || value.get("errors").is_some() => Ok(value),
        _ => Err(not_graphql(status)),
    }
}

/// Why an answer that is not a GraphQL response is none.
pub fn not_graphql(status: StatusCode) -> SubgraphError {
    if status.is_success() { SubgraphError::Malformed } else { SubgraphError::Status(status.as_u16()) }
}
