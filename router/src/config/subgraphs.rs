//! How the router calls subgraphs: where they are, how long it waits, how many
//! connections it keeps, when a circuit opens and how queries are retried.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use platform::config::{Env, SubgraphSecret};

#[derive(Debug, Clone)]
pub struct SubgraphSettings {
    /// `SUBGRAPH_<NAME>_URL`: replaces the URL the supergraph names for that subgraph.
    pub url_overrides: HashMap<String, String>,
    /// `SUBGRAPH_<NAME>_TIMEOUT`: per-subgraph request timeout.
    pub timeout_overrides: HashMap<String, Duration>,
    pub default_timeout: Duration,
    /// `SUBGRAPH_<NAME>_CONNECT_TIMEOUT`: per-subgraph time to open a connection (TCP and TLS).
    pub connect_timeout_overrides: HashMap<String, Duration>,
    pub default_connect_timeout: Duration,
    /// `SUBGRAPH_HTTP`: HTTP/1.1, HTTP/2, or HTTP/2 where TLS negotiates it.
    pub protocol: Protocol,
    /// Extra roots and the client certificate for `https://` subgraphs.
    pub tls: TlsFiles,
    /// Largest subgraph response body read (`SUBGRAPH_MAX_RESPONSE_BYTES`).
    pub max_response_bytes: usize,
    /// Connections per subgraph (`SUBGRAPH_MAX_CONNECTIONS`) and the wait for
    /// one when all are in use (`SUBGRAPH_CONNECTION_WAIT`).
    pub connections: ConnectionLimits,
    /// Client headers passed on to subgraphs (lower case).
    pub forward_headers: Vec<String>,
    pub breaker: BreakerSettings,
    pub retry: RetrySettings,
    /// Identical query fetches in flight share one exchange (`SUBGRAPH_DEDUPE`).
    pub dedupe: bool,
    /// `SUBGRAPH_SHARED_SECRET`: sent on every subgraph request (see
    /// [`platform::http::ROUTER_SECRET_HEADER`]), unless disabled.
    pub secret: SubgraphSecret,
}

/// `SUBGRAPH_HTTP`: the HTTP version spoken to subgraphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/2 where TLS negotiates it (ALPN), HTTP/1.1 otherwise.
    Auto,
    Http1,
    /// HTTP/2 only: ALPN `h2` over TLS, prior knowledge (h2c) over plain TCP.
    Http2,
}

impl Protocol {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "auto" => Some(Protocol::Auto),
            "http1" => Some(Protocol::Http1),
            "http2" => Some(Protocol::Http2),
            _ => None,
        }
    }
}

/// Where the TLS settings' files are (`SUBGRAPH_CA_FILE`,
/// `SUBGRAPH_CLIENT_CERT_FILE` and `SUBGRAPH_CLIENT_KEY_FILE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificates trusted beside the built-in roots.
    pub ca: Option<PathBuf>,
    /// A PEM certificate chain and its PEM private key, for mTLS.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// How many connections the router holds to one subgraph at most, and how long
/// a request waits for one when all are in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max: usize,
    pub wait: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    /// `None`: never open.
    pub failures: Option<u32>,
    pub cool_down: Duration,
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

impl SubgraphSettings {
    pub fn timeout(&self, subgraph: &str) -> Duration {
        self.timeout_overrides.get(subgraph).copied().unwrap_or(self.default_timeout)
    }

    pub fn connect_timeout(&self, subgraph: &str) -> Duration {
        self.connect_timeout_overrides.get(subgraph).copied().unwrap_or(self.default_connect_timeout)
    }

    pub(super) fn from_env(env: &mut Env) -> Self {
        let mut url_overrides = HashMap::new();
        let mut timeout_overrides = HashMap::new();
        let mut connect_timeout_overrides = HashMap::new();
        for (name, value) in env.with_prefix("SUBGRAPH_") {
            if let Some(subgraph) = name.strip_suffix("_CONNECT_TIMEOUT") {
                let var = format!("SUBGRAPH_{subgraph}_CONNECT_TIMEOUT");
                let timeout = env.duration(&var, "2s", Duration::from_millis(1), Duration::from_secs(60));
                connect_timeout_overrides.insert(subgraph.to_ascii_lowercase(), timeout);
            } else if name == "CONNECT_TIMEOUT" {
                // The default for all, read below.
            } else if let Some(subgraph) = name.strip_suffix("_URL") {
                if !(value.starts_with("http://") || value.starts_with("https://")) {
                    env.invalid(&format!("SUBGRAPH_{subgraph}_URL"), "an http:// or https:// URL", Some(&value));
                }
                url_overrides.insert(subgraph.to_ascii_lowercase(), value);
            } else if let Some(subgraph) = name.strip_suffix("_TIMEOUT") {
                let var = format!("SUBGRAPH_{subgraph}_TIMEOUT");
                let timeout = env.duration(&var, "10s", Duration::from_millis(1), Duration::from_secs(600));
                timeout_overrides.insert(subgraph.to_ascii_lowercase(), timeout);
            }
        }
        let forward_headers = env
            .string("FORWARD_HEADERS", "authorization,x-request-id,traceparent,tracestate")
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let protocol = env.string("SUBGRAPH_HTTP", "auto");
        let protocol = Protocol::parse(&protocol).unwrap_or_else(|| {
            env.invalid("SUBGRAPH_HTTP", "auto, http1 or http2", Some(&protocol));
            Protocol::Auto
        });
        let client_cert = env.optional("SUBGRAPH_CLIENT_CERT_FILE").map(PathBuf::from);
        let client_key = env.optional("SUBGRAPH_CLIENT_KEY_FILE").map(PathBuf::from);
        let client = match (client_cert, client_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                let why = "set together with SUBGRAPH_CLIENT_KEY_FILE (both or neither)";
                env.invalid("SUBGRAPH_CLIENT_CERT_FILE", why, None);
                None
            }
        };
        let tls = TlsFiles { ca: env.optional("SUBGRAPH_CA_FILE").map(PathBuf::from), client };
        Self {
            url_overrides,
            timeout_overrides,
            connect_timeout_overrides,
            default_connect_timeout: env.duration(
                "SUBGRAPH_CONNECT_TIMEOUT",
                "2s",
                Duration::from_millis(1),
                Duration::from_secs(60),
            ),
            protocol,
            tls,
            default_timeout: env.duration(
                "SUBGRAPH_TIMEOUT",
                "10s",
                Duration::from_millis(1),
                Duration::from_secs(600),
            ),
            max_response_bytes: env.int_in("SUBGRAPH_MAX_RESPONSE_BYTES", 64 << 20, 1024, 1 << 32),
            connections: ConnectionLimits {
                max: env.int_in("SUBGRAPH_MAX_CONNECTIONS", 128usize, 1, 100_000),
                // Long enough to ride out a burst (128 connections at 10 ms an
                // answer turn over 12,800 requests a second), short enough that
                // an overloaded subgraph sheds load rather than queueing it.
                wait: env.duration("SUBGRAPH_CONNECTION_WAIT", "1s", Duration::from_millis(1), Duration::from_secs(60)),
            },
            forward_headers,
            breaker: BreakerSettings {
                failures: match env.int_in("CIRCUIT_BREAKER_FAILURES", 5u32, 0, 1_000_000) {
                    0 => None,
                    n => Some(n),
                },
                cool_down: env.duration(
                    "CIRCUIT_BREAKER_COOL_DOWN",
                    "5s",
                    Duration::from_millis(1),
                    Duration::from_secs(3600),
                ),
            },
            retry: RetrySettings {
                attempts: env.int_in("SUBGRAPH_RETRIES", 2u32, 0, 10),
                backoff: env.duration(
                    "SUBGRAPH_RETRY_BACKOFF",
                    "20ms",
                    Duration::from_millis(1),
                    Duration::from_secs(10),
                ),
                budget_ratio: env.int_in("SUBGRAPH_RETRY_BUDGET_PERCENT", 10u32, 0, 1000) as f32 / 100.0,
            },
            dedupe: env.bool("SUBGRAPH_DEDUPE", true),
            secret: SubgraphSecret::from_env(env),
        }
    }
}
