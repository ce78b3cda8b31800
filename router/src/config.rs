//! The router's settings, all from environment variables (see README).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use kit::config::{Env, HttpSettings, IdentitySettings, SubgraphSecret, TelemetrySettings};

use crate::edge::client_ip::{IpNet, TrustedProxies};
use crate::edge::ratelimit::{Policy, Rate, RateLimitSettings, Store};
use crate::pipeline::execute::SubgraphErrors;
use crate::pipeline::limits::OperationLimits;
use crate::pipeline::multipart::UploadLimits;
use crate::subgraphs::RetrySettings;
use crate::subgraphs::breaker::BreakerSettings;
use crate::subgraphs::connector::{Protocol, TlsFiles};
use crate::subgraphs::pool::ConnectionLimits;

pub const DEFAULT_PORT: u16 = 4000;

#[derive(Debug, Clone)]
pub struct Settings {
    pub http: HttpSettings,
    pub telemetry: TelemetrySettings,
    pub supergraph: SupergraphSettings,
    pub subgraphs: SubgraphSettings,
    pub edge_auth: EdgeAuthSettings,
    /// Origins browsers may call the API from (CORS); empty: same origin only.
    pub cors_origins: Vec<String>,
    pub graphql: GraphqlSettings,
    /// `None` when `RATE_LIMIT_ENABLED=false`.
    pub rate_limits: Option<RateLimitSettings>,
    /// Peers whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// The subgraph whose `/files/{id}/content` the router passes through (`FILES_SUBGRAPH`).
    pub files_subgraph: Option<String>,
    /// Multipart requests; `None` when `UPLOAD_MAX_FILES=0`.
    pub uploads: Option<UploadLimits>,
    /// Largest JSON request body (`BODY_LIMIT_BYTES`); `http.body_limit` also makes room for files.
    pub json_body_limit: usize,
    /// The built web app served at `/` (`FRONTEND_DIR`); `None`: no app here.
    pub frontend_dir: Option<PathBuf>,
}

/// Verifying bearer tokens at the edge, before any subgraph is called.
#[derive(Debug, Clone)]
pub struct EdgeAuthSettings {
    /// The auth service's JWKS; `None` (`JWKS_URL=none`) passes tokens through unchecked.
    pub jwks_url: Option<String>,
    pub identity: IdentitySettings,
}

impl EdgeAuthSettings {
    fn from_env(env: &mut Env) -> Self {
        let raw = env.string("JWKS_URL", "http://127.0.0.1:4001/.well-known/jwks.json");
        let jwks_url = match raw.trim() {
            "" | "none" => None,
            url if url.starts_with("http://") || url.starts_with("https://") => Some(url.to_owned()),
            other => {
                env.invalid("JWKS_URL", "an http(s) URL, or none", Some(other));
                None
            }
        };
        Self { jwks_url, identity: IdentitySettings::from_env(env) }
    }
}

#[derive(Debug, Clone)]
pub struct SupergraphSettings {
    /// The composed supergraph SDL.
    pub path: PathBuf,
    /// How often the file is checked for changes.
    pub poll_interval: Duration,
}

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
    /// `SUBGRAPH_SHARED_SECRET`: sent on every subgraph request (see
    /// [`kit::http::ROUTER_SECRET_HEADER`]), unless disabled.
    pub secret: SubgraphSecret,
}

impl SubgraphSettings {
    pub fn timeout(&self, subgraph: &str) -> Duration {
        self.timeout_overrides.get(subgraph).copied().unwrap_or(self.default_timeout)
    }

    pub fn connect_timeout(&self, subgraph: &str) -> Duration {
        self.connect_timeout_overrides.get(subgraph).copied().unwrap_or(self.default_connect_timeout)
    }
}

#[derive(Debug, Clone)]
pub struct GraphqlSettings {
    pub introspection: bool,
    pub graphiql: bool,
    /// Refuse GET operations without a preflight-forcing header (CSRF).
    pub csrf_prevention: bool,
    /// Bytes of prepared operations (parsed, validated, planned) kept in the
    /// LRU cache (`PLAN_CACHE_MAX_BYTES`); refusals get a quarter of it.
    pub plan_cache_max_bytes: usize,
    /// What of subgraphs' errors clients see (`SUBGRAPH_ERRORS`).
    pub subgraph_errors: SubgraphErrors,
    /// Document limits (kit's, the same for every subgraph), the batch size among them.
    pub limits: OperationLimits,
    /// Operations parsed, validated and planned at once, on the blocking pool (`PREPARE_CONCURRENCY`).
    pub prepare_concurrency: usize,
    /// Longest an operation may take to prepare (`PLANNING_TIMEOUT`).
    pub planning_timeout: Duration,
}

impl Settings {
    pub fn from_env(env: &mut Env) -> Self {
        let mut http = HttpSettings::from_env(env, DEFAULT_PORT);
        let json_body_limit = http.body_limit;
        let max_files = env.int_in("UPLOAD_MAX_FILES", 10usize, 0, 1000);
        let max_file_bytes = env.int_in("UPLOAD_MAX_FILE_BYTES", 10u64 << 20, 0, i64::MAX as u64);
        let uploads = (max_files > 0).then_some(UploadLimits {
            max_file_bytes,
            max_files,
            max_field_bytes: json_body_limit,
            timeout: http.request_timeout,
        });
        // A multipart request may carry its operations and map plus its files.
        if uploads.is_some() {
            http.body_limit = http.body_limit.saturating_add(max_files.saturating_mul(max_file_bytes as usize));
        }
        Self {
            http,
            json_body_limit,
            uploads,
            telemetry: TelemetrySettings::from_env(env),
            supergraph: SupergraphSettings {
                path: env.string("SUPERGRAPH_PATH", "schema/supergraph.graphql").into(),
                poll_interval: env.duration(
                    "SUPERGRAPH_POLL_INTERVAL",
                    "2s",
                    Duration::from_millis(10),
                    Duration::from_secs(3600),
                ),
            },
            subgraphs: SubgraphSettings::from_env(env),
            edge_auth: EdgeAuthSettings::from_env(env),
            cors_origins: cors_origins_from_env(env),
            graphql: GraphqlSettings {
                introspection: env.bool("INTROSPECTION", true),
                csrf_prevention: env.bool("CSRF_PREVENTION", true),
                graphiql: env.bool("GRAPHIQL", true),
                plan_cache_max_bytes: env.int_in("PLAN_CACHE_MAX_BYTES", 64usize << 20, 0, 1 << 40),
                subgraph_errors: match env.choice("SUBGRAPH_ERRORS", "mask", &["mask", "pass"]) {
                    "pass" => SubgraphErrors::Pass,
                    _ => SubgraphErrors::Mask,
                },
                limits: OperationLimits::from_env(env),
                prepare_concurrency: env.int_in("PREPARE_CONCURRENCY", default_prepare_concurrency(), 1, 1024),
                planning_timeout: env.duration(
                    "PLANNING_TIMEOUT",
                    "5s",
                    Duration::from_millis(1),
                    Duration::from_secs(600),
                ),
            },
            rate_limits: rate_limits_from_env(env),
            trusted_proxies: trusted_proxies_from_env(env),
            files_subgraph: match env.string("FILES_SUBGRAPH", "files").trim() {
                "" | "none" => None,
                name => Some(name.to_owned()),
            },
            frontend_dir: match env.string("FRONTEND_DIR", "").trim() {
                "" | "none" => None,
                dir => Some(PathBuf::from(dir)),
            },
        }
    }
}

/// One preparation per CPU the process may use.
fn default_prepare_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn rate_limits_from_env(env: &mut Env) -> Option<RateLimitSettings> {
    if !env.bool("RATE_LIMIT_ENABLED", true) {
        return None;
    }
    let rate = |env: &mut Env, name: &str, default: &str| {
        let raw = env.string(name, default);
        if matches!(raw.trim(), "" | "none" | "off") {
            return None;
        }
        let parsed = Rate::parse(&raw);
        if parsed.is_none() {
            env.invalid(name, "<count>/<window> like 10/15m, or none", Some(&raw));
        }
        parsed
    };
    let mut rates = [None; Policy::ALL.len()];
    rates[Policy::Ip as usize] = rate(env, "RATE_LIMIT_IP", "1200/1m");
    rates[Policy::User as usize] = rate(env, "RATE_LIMIT_USER", "600/1m");
    rates[Policy::Login as usize] = rate(env, "RATE_LIMIT_LOGIN", "10/15m");
    rates[Policy::Refresh as usize] = rate(env, "RATE_LIMIT_REFRESH", "30/15m");
    rates[Policy::Password as usize] = rate(env, "RATE_LIMIT_PASSWORD", "10/15m");
    let fields = |env: &mut Env, name: &str, default: &str| -> Vec<String> {
        env.string(name, default).split(',').map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()).collect()
    };
    let login_fields = fields(env, "RATE_LIMIT_LOGIN_FIELDS", "login,register");
    let refresh_fields = fields(env, "RATE_LIMIT_REFRESH_FIELDS", "refreshToken");
    let password_fields = fields(env, "RATE_LIMIT_PASSWORD_FIELDS", "changePassword,deleteAccount");
    let store = match env.string("RATE_LIMIT_STORE", "local").trim() {
        "redis" => Store::Redis {
            url: env.secret_or("RATE_LIMIT_REDIS_URL", "redis://127.0.0.1:6379"),
            key_prefix: env.string("RATE_LIMIT_KEY_PREFIX", "taskgraph:ratelimit"),
            timeout: env.duration(
                "RATE_LIMIT_REDIS_TIMEOUT",
                "50ms",
                Duration::from_millis(1),
                Duration::from_secs(10),
            ),
        },
        "local" => Store::Local,
        other => {
            env.invalid("RATE_LIMIT_STORE", "local or redis", Some(other));
            Store::Local
        }
    };
    Some(RateLimitSettings { rates, login_fields, refresh_fields, password_fields, store })
}

fn trusted_proxies_from_env(env: &mut Env) -> TrustedProxies {
    let raw = env.string("TRUSTED_PROXIES", "");
    let mut nets = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match IpNet::parse(item) {
            Some(net) => nets.push(net),
            None => env.invalid("TRUSTED_PROXIES", "a comma-separated list of IPs or CIDR blocks", Some(item)),
        }
    }
    TrustedProxies(nets)
}

fn cors_origins_from_env(env: &mut Env) -> Vec<String> {
    let raw = env.string("CORS_ALLOWED_ORIGINS", "");
    let origins: Vec<String> =
        raw.split(',').map(|o| o.trim().trim_end_matches('/').to_owned()).filter(|o| !o.is_empty()).collect();
    for origin in &origins {
        let scheme_ok = origin.starts_with("http://") || origin.starts_with("https://");
        if !scheme_ok || origin.contains('*') || axum::http::HeaderValue::from_str(origin).is_err() {
            env.invalid(
                "CORS_ALLOWED_ORIGINS",
                "a comma-separated list of origins like https://app.example.com",
                Some(origin),
            );
        }
    }
    origins
}

impl SubgraphSettings {
    fn from_env(env: &mut Env) -> Self {
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
            secret: SubgraphSecret::from_env(env),
        }
    }
}
