//! One subgraph as the router calls it: the endpoint the supergraph names,
//! with the connections, the metrics and the timeout the client uses for it.

use std::sync::Arc;
use std::time::Duration;

use super::connector::Connector;
use super::dedupe::Inflight;
use super::pool::Pool;
use super::{Fetched, SubgraphMetrics};
use crate::config::SubgraphSettings;

/// One subgraph as the router calls it.
#[derive(Debug, Clone)]
pub struct Subgraph {
    pub name: String,
    /// `name` as a metric label: cloned per request without allocating.
    pub label: metrics::SharedString,
    /// Its request metrics, registered when the supergraph is built.
    pub metrics: Arc<SubgraphMetrics>,
    pub url: String,
    /// Its connections: kept alive for GraphQL fetches, one of its own per streamed body.
    pub pool: Arc<Pool>,
    /// Its query fetches in flight, for identical ones to share (`SUBGRAPH_DEDUPE`).
    pub fetches: Arc<Inflight<Fetched>>,
    pub timeout: Duration,
}

impl Subgraph {
    /// The subgraph `name` at `url` (`http://` or `https://`): its pool of
    /// connections (carrying the router's secret) and its metrics, with the
    /// timeouts set for `key` (its lower-case name).
    pub fn connect(
        name: &str,
        url: String,
        key: &str,
        settings: &SubgraphSettings,
        connector: &Arc<Connector>,
    ) -> anyhow::Result<Self> {
        let uri: axum::http::Uri =
            url.parse().map_err(|e| anyhow::anyhow!("subgraph {name} has an invalid URL {url:?}: {e}"))?;
        let (accept, max_body) = (super::ACCEPT, settings.max_response_bytes);
        let connect_timeout = settings.connect_timeout(key);
        let mut pool = Pool::new(&uri, accept, max_body, settings.connections, connector.clone(), connect_timeout)
            .map_err(|e| anyhow::anyhow!("subgraph {name} has URL {url:?}: {e}"))?;
        if let Some(secret) = super::secret_header(&settings.secret) {
            pool = pool.with_header(&platform::http::ROUTER_SECRET_HEADER, &secret);
        }
        let label = metrics::SharedString::from(Arc::<str>::from(name));
        let subgraph_metrics = Arc::new(SubgraphMetrics::default());
        subgraph_metrics.register(&label);
        Ok(Self {
            name: name.to_owned(),
            label,
            metrics: subgraph_metrics,
            url,
            pool: Arc::new(pool),
            fetches: Arc::default(),
            timeout: settings.timeout(key),
        })
    }

    /// Takes over `previous`'s keep-alive connections when the URL is the
    /// same, so that a reload does not reconnect every subgraph at once.
    pub fn keep_connections_of(&mut self, previous: &Subgraph) {
        if previous.url == self.url {
            self.pool = previous.pool.clone();
            self.fetches = previous.fetches.clone();
        }
    }
}
