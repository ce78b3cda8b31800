//! Calling subgraphs: pooled keep-alive HTTP, JSON in and out, per-subgraph
//! timeouts, a circuit breaker per subgraph, retries of queries within a budget,
//! and only the allow-listed client headers passed on.

pub mod breaker;
pub mod http1;

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use metrics::{Histogram, SharedString};
use rand::Rng;
use serde_json::Value;
use tower::retry::budget::{Budget, TpsBudget};

use crate::supergraph::Subgraph;
use breaker::{BreakerSettings, Breakers, Permit, ProbeGuard};

#[derive(Debug, thiserror::Error)]
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
}

#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    /// Extra attempts of a failed query fetch (never of a mutation's).
    pub attempts: u32,
    /// First backoff, doubled per attempt, with ±50% jitter.
    pub backoff: Duration,
    /// Retries allowed as a share of requests (over 10 s), on top of 10 per second.
    pub budget_ratio: f32,
}

pub struct SubgraphClient {
    /// Streamed bodies: uploads and file downloads. (GraphQL fetches go through
    /// each subgraph's own [`http1::Pool`].)
    http: reqwest::Client,
    forward: Vec<HeaderName>,
    breakers: Breakers,
    retry: RetrySettings,
    budget: TpsBudget,
}

impl SubgraphClient {
    pub fn new(forward_headers: &[String], breaker: BreakerSettings, retry: RetrySettings) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .expect("a plain HTTP client always builds");
        let forward = forward_headers
            .iter()
            .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
            .filter(|name| {
                let ok = http1::forwardable(name);
                if !ok {
                    tracing::warn!(header = %name, "FORWARD_HEADERS: a framing or hop-by-hop header is never forwarded");
                }
                ok
            })
            .collect();
        let budget = TpsBudget::new(Duration::from_secs(10), 10, retry.budget_ratio);
        Self { http, forward, breakers: Breakers::new(breaker), retry, budget }
    }

    /// The pooled client, for calls that are not GraphQL (file downloads).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The client's headers that subgraphs may see.
    pub fn forwarded_headers(&self, incoming: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::new();
        for name in &self.forward {
            for value in incoming.get_all(name) {
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
    pub async fn send_decoded<T>(
        &self,
        subgraph: &Subgraph,
        body: Bytes,
        headers: &HeaderMap,
        idempotent: bool,
        decode: Decode<T>,
    ) -> Result<T, SubgraphError> {
        self.budget.deposit();
        let mut retries = 0;
        loop {
            let exchange = exchange_json(subgraph, &body, headers, idempotent, decode);
            let result = self.attempt(subgraph, exchange, None).await;
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
        body: reqwest::Body,
        content_type: &str,
        headers: &HeaderMap,
        timeout: Duration,
        blame_client: &(dyn Fn() -> bool + Sync),
        decode: Decode<T>,
    ) -> Result<T, SubgraphError> {
        let request = self.http.post(subgraph.endpoint.clone()).body(body);
        let exchange = self.exchange_multipart(request, headers, content_type, timeout, decode);
        self.attempt(subgraph, exchange, Some(blame_client)).await
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
        // A client that breaks its own upload says nothing about the subgraph.
        let healthy = result.is_ok() || blame_client.is_some_and(|blame| blame());
        self.breakers.record(&subgraph.name, permit, healthy);
        probe.armed = false;
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(SubgraphError::Timeout) => Outcome::Timeout,
            Err(_) => Outcome::Error,
        };
        subgraph.metrics.duration(&subgraph.label, outcome).record(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            tracing::warn!(subgraph = %subgraph.name, error = %e, "subgraph request failed");
        }
        result
    }

    async fn exchange_multipart<T>(
        &self,
        request: reqwest::RequestBuilder,
        headers: &HeaderMap,
        content_type: &str,
        timeout: Duration,
        decode: Decode<T>,
    ) -> Result<T, SubgraphError> {
        let response = request
            .headers(headers.clone())
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, HeaderValue::from_static(ACCEPT))
            .timeout(timeout)
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(classify)?;
        decode(status, bytes)
    }
}

/// One GraphQL POST over the subgraph's pooled connections, within its timeout.
async fn exchange_json<T>(
    subgraph: &Subgraph,
    body: &[u8],
    headers: &HeaderMap,
    idempotent: bool,
    decode: Decode<T>,
) -> Result<T, SubgraphError> {
    let exchange = subgraph.pool.post(headers, body, idempotent);
    let response = tokio::time::timeout(subgraph.timeout, exchange)
        .await
        .map_err(|_| SubgraphError::Timeout)?
        .map_err(|e| match e {
            http1::Http1Error::TooLarge(_) => SubgraphError::TooLarge,
            e => {
                // The client-facing error says only "unreachable"; this says why.
                tracing::debug!(subgraph = %subgraph.name, error = %e, "subgraph exchange failed");
                SubgraphError::Unreachable
            }
        })?;
    decode(response.status, response.body)
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
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) if value.get("data").is_some() || value.get("errors").is_some() => Ok(value),
        _ => Err(not_graphql(status)),
    }
}

/// Why an answer that is not a GraphQL response is none.
pub fn not_graphql(status: StatusCode) -> SubgraphError {
    if status.is_success() { SubgraphError::Malformed } else { SubgraphError::Status(status.as_u16()) }
}

fn classify(error: reqwest::Error) -> SubgraphError {
    if error.is_timeout() { SubgraphError::Timeout } else { SubgraphError::Unreachable }
}
