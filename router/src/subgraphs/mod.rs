//! Calling subgraphs: pooled keep-alive HTTP, JSON in and out, per-subgraph
//! timeouts, and only the allow-listed client headers passed on.

use std::time::Instant;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use serde_json::Value;

use crate::supergraph::Subgraph;

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
}

pub struct SubgraphClient {
    http: reqwest::Client,
    forward: Vec<HeaderName>,
}

impl SubgraphClient {
    pub fn new(forward_headers: &[String]) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .expect("a plain HTTP client always builds");
        let forward = forward_headers.iter().filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok()).collect();
        Self { http, forward }
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

    /// Posts one GraphQL request; the body is already JSON.
    pub async fn send(&self, subgraph: &Subgraph, body: Vec<u8>, headers: &HeaderMap) -> Result<Value, SubgraphError> {
        let started = Instant::now();
        let result = self.exchange(subgraph, body, headers).await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(SubgraphError::Timeout) => "timeout",
            Err(_) => "error",
        };
        metrics::histogram!("subgraph_request_duration_seconds", "subgraph" => subgraph.name.clone(), "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            tracing::warn!(subgraph = %subgraph.name, error = %e, "subgraph request failed");
        }
        result
    }

    async fn exchange(&self, subgraph: &Subgraph, body: Vec<u8>, headers: &HeaderMap) -> Result<Value, SubgraphError> {
        let response = self
            .http
            .post(subgraph.endpoint.clone())
            .headers(headers.clone())
            .header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(header::ACCEPT, HeaderValue::from_static("application/graphql-response+json, application/json"))
            .timeout(subgraph.timeout)
            .body(body)
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(classify)?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) if value.get("data").is_some() || value.get("errors").is_some() => Ok(value),
            _ if !status.is_success() => Err(SubgraphError::Status(status.as_u16())),
            _ => Err(SubgraphError::Malformed),
        }
    }
}

fn classify(error: reqwest::Error) -> SubgraphError {
    if error.is_timeout() { SubgraphError::Timeout } else { SubgraphError::Unreachable }
}
