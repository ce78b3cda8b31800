//! The router's settings, all from environment variables (see README).
//!
//! Settings know nothing of the code that reads them: the edge's are in
//! [`edge`], the subgraph client's in [`subgraphs`], re-exported here.

mod edge;
mod subgraphs;

use std::path::PathBuf;
use std::time::Duration;

pub use edge::{EdgeAuthSettings, IpNet, Policy, Rate, RateLimitSettings, Store};
use platform::config::{Env, HttpSettings, QueryLimits, TelemetrySettings};
pub use subgraphs::{BreakerSettings, ConnectionLimits, Protocol, RetrySettings, SubgraphSettings, TlsFiles};

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
    pub trusted_proxies: Vec<IpNet>,
    /// The subgraph whose `/files/{id}/content` the router passes through (`FILES_SUBGRAPH`).
    pub files_subgraph: Option<String>,
    /// Multipart requests; `None` when `UPLOAD_MAX_FILES=0`.
    pub uploads: Option<UploadLimits>,
    /// Largest JSON request body (`BODY_LIMIT_BYTES`); `http.body_limit` also makes room for files.
    pub json_body_limit: usize,
    /// The built web app served at `/` (`FRONTEND_DIR`); `None`: no app here.
    pub frontend_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct SupergraphSettings {
    /// The composed supergraph SDL.
    pub path: PathBuf,
    /// How often the file is checked for changes.
    pub poll_interval: Duration,
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
    /// Document limits (the platform's, the same for every subgraph), the batch size among them.
    pub limits: QueryLimits,
    /// Operations parsed, validated and planned at once, on the blocking pool (`PREPARE_CONCURRENCY`).
    pub prepare_concurrency: usize,
    /// Longest an operation may take to prepare (`PLANNING_TIMEOUT`).
    pub planning_timeout: Duration,
    /// Identical client queries in flight share one execution (`REQUEST_DEDUPE`).
    pub request_dedupe: bool,
}

impl Settings {
    pub fn from_env(env: &mut Env) -> Self {
        let mut http = HttpSettings::from_env(env, DEFAULT_PORT);
        // Clients come in here: a request without a trace context begins one.
        http.starts_traces = true;
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
                limits: QueryLimits::from_env(env),
                prepare_concurrency: env.int_in("PREPARE_CONCURRENCY", default_prepare_concurrency(), 1, 1024),
                planning_timeout: env.duration(
                    "PLANNING_TIMEOUT",
                    "5s",
                    Duration::from_millis(1),
                    Duration::from_secs(600),
                ),
                request_dedupe: env.bool("REQUEST_DEDUPE", true),
            },
            rate_limits: edge::rate_limits_from_env(env),
            trusted_proxies: edge::trusted_proxies_from_env(env),
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

/// What of a subgraph's errors reaches the client (`SUBGRAPH_ERRORS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubgraphErrors {
    /// Everything but `locations` (which point into the subgraph's operation, not the client's).
    Pass,
    /// Message and code only for the codes the execution passes on; every other
    /// error a generic message, as a subgraph's internals are none of the client's business.
    Mask,
}

/// Multipart requests (file uploads) the router takes.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    pub max_file_bytes: u64,
    pub max_files: usize,
    /// Largest `operations` or `map` part.
    pub max_field_bytes: usize,
    /// The whole subgraph request, files included.
    pub timeout: Duration,
}

/// One preparation per CPU the process may use.
fn default_prepare_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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
