//! Typed configuration from environment variables.
//!
//! Every service reads its settings through [`Env`], which collects *all* problems
//! before failing, so an operator fixes a broken deployment in one round trip.
//! Each problem is one line naming the variable and what it expects.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// A value that must never reach a log line. `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Every configuration problem found, one line each.
#[derive(Debug)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for ConfigError {}

/// A reader of configuration variables that remembers what was wrong.
pub struct Env {
    vars: HashMap<String, String>,
    errors: Vec<String>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars())
    }

    /// An explicit set of variables (tests, tools).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect(), errors: Vec::new() }
    }

    /// Sets or replaces a variable (tests override single values this way).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_owned(), value.into());
    }

    /// The raw value, `None` when unset or empty.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.vars.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// Every set variable whose name starts with `prefix`, the prefix removed, sorted by name.
    pub fn with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = self
            .vars
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_owned(), v.trim().to_owned())))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        found.sort();
        found
    }

    pub fn string(&self, name: &str, default: &str) -> String {
        self.optional(name).unwrap_or_else(|| default.to_owned())
    }

    pub fn secret(&self, name: &str) -> Option<Secret> {
        self.optional(name).map(Secret)
    }

    /// A secret from `<NAME>`, or from the file `<NAME>_FILE` names (a compose or
    /// Kubernetes secret; surrounding whitespace, such as the final newline,
    /// trimmed), else `default`. Setting both is a problem.
    pub fn secret_or(&mut self, name: &str, default: &str) -> Secret {
        let file_var = format!("{name}_FILE");
        match (self.optional(name), self.optional(&file_var)) {
            (Some(value), None) => Secret(value),
            (None, None) => Secret(default.to_owned()),
            (Some(value), Some(_)) => {
                self.invalid(&file_var, &format!("unset when {name} is set (use one of them)"), None);
                Secret(value)
            }
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) => Secret(text.trim().to_owned()),
                Err(e) => {
                    self.invalid(&file_var, &format!("a readable file ({e})"), Some(&path));
                    Secret(default.to_owned())
                }
            },
        }
    }

    /// Records a problem with `name`; `expects` says what a right value looks like.
    pub fn invalid(&mut self, name: &str, expects: &str, got: Option<&str>) {
        let line = match got {
            Some(value) => format!("{name} must be {expects} (got {value:?})"),
            None => format!("{name} must be {expects}"),
        };
        self.errors.push(line);
    }

    /// Parses `name` with `FromStr`, or takes `default` when unset.
    pub fn parse<T: FromStr>(&mut self, name: &str, default: T, expects: &str) -> T {
        match self.optional(name) {
            None => default,
            Some(raw) => match raw.parse() {
                Ok(value) => value,
                Err(_) => {
                    self.invalid(name, expects, Some(&raw));
                    default
                }
            },
        }
    }

    /// An integer within `min..=max`.
    pub fn int_in<T>(&mut self, name: &str, default: T, min: T, max: T) -> T
    where
        T: FromStr + PartialOrd + Copy + fmt::Display,
    {
        let expects = format!("a whole number from {min} to {max}");
        let value = self.parse(name, default, &expects);
        if value < min || value > max {
            let raw = self.optional(name);
            self.invalid(name, &expects, raw.as_deref());
            return default;
        }
        value
    }

    pub fn port(&mut self, name: &str, default: u16) -> u16 {
        self.parse(name, default, "a TCP port number (0 to 65535)")
    }

    pub fn ip(&mut self, name: &str, default: IpAddr) -> IpAddr {
        self.parse(name, default, "an IP address such as 0.0.0.0 or ::")
    }

    pub fn bool(&mut self, name: &str, default: bool) -> bool {
        match self.optional(name).map(|v| v.to_ascii_lowercase()) {
            None => default,
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => true,
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => false,
            Some(v) => {
                self.invalid(name, "true or false", Some(&v));
                default
            }
        }
    }

    /// A humantime duration such as `250ms`, `15m` or `7d`, within `min..=max`.
    pub fn duration(&mut self, name: &str, default: &str, min: Duration, max: Duration) -> Duration {
        let fallback = humantime::parse_duration(default).expect("defaults are valid durations");
        let expects = format!(
            "a duration such as 30s or 15m, from {} to {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        );
        match self.optional(name) {
            None => fallback,
            Some(raw) => match humantime::parse_duration(&raw) {
                Ok(d) if d >= min && d <= max => d,
                _ => {
                    self.invalid(name, &expects, Some(&raw));
                    fallback
                }
            },
        }
    }

    /// One of `choices` (case-insensitive).
    pub fn choice(&mut self, name: &str, default: &'static str, choices: &[&'static str]) -> &'static str {
        match self.optional(name) {
            None => default,
            Some(raw) => match choices.iter().find(|c| c.eq_ignore_ascii_case(&raw)) {
                Some(choice) => choice,
                None => {
                    self.invalid(name, &format!("one of {}", choices.join(", ")), Some(&raw));
                    default
                }
            },
        }
    }

    /// Ends reading: every problem found, or nothing.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.errors.is_empty() { Ok(()) } else { Err(ConfigError(self.errors)) }
    }
}

/// How a service writes its logs, and whether and where it sends traces.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// `LOG_FORMAT`: `json` (default) or `pretty`.
    pub pretty: bool,
    /// `LOG_LEVEL`: an `EnvFilter` directive such as `info` or `auth=debug,info`.
    pub level: String,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` set: spans exported over OTLP/HTTP;
    /// `None` (the default): no tracing at all.
    pub traces: Option<TraceSettings>,
}

/// Where spans go and which traces are kept (the OpenTelemetry SDK's standard variables).
#[derive(Debug, Clone)]
pub struct TraceSettings {
    /// The URL spans are posted to: `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces` appended.
    pub endpoint: String,
    /// `OTEL_SERVICE_NAME`; `None`: the service's own name (`router`, `auth`, ...).
    pub service_name: Option<String>,
    /// Share of the traces started here that are kept, from `OTEL_TRACES_SAMPLER`
    /// and `OTEL_TRACES_SAMPLER_ARG`. Always parent-based: a request or event that
    /// arrives with a trace context follows the decision made where the trace began.
    pub sample_ratio: f64,
    /// `OTEL_EXPORTER_OTLP_HEADERS`: `name=value` pairs sent with every export
    /// (a hosted backend's credentials; never logged).
    pub headers: Vec<(String, Secret)>,
}

/// The samplers `OTEL_TRACES_SAMPLER` names, each read as parent-based.
const SAMPLERS: [&str; 6] = [
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
    "always_on",
    "always_off",
    "traceidratio",
];

impl TelemetrySettings {
    pub fn from_env(env: &mut Env) -> Self {
        let pretty = env.choice("LOG_FORMAT", "json", &["json", "pretty"]) == "pretty";
        let level = env.string("LOG_LEVEL", "info");
        if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
            env.invalid("LOG_LEVEL", "a log filter such as info or auth=debug,info", Some(&level));
        }
        Self { pretty, level, traces: TraceSettings::from_env(env) }
    }
}

impl TraceSettings {
    /// `None` unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    fn from_env(env: &mut Env) -> Option<Self> {
        let base = env.optional("OTEL_EXPORTER_OTLP_ENDPOINT")?;
        // Plain HTTP only: no TLS stack is built in, so spans go to a collector
        // beside the service (compose's, a sidecar, a node agent), which forwards them.
        if !base.starts_with("http://") || base.len() == "http://".len() {
            env.invalid(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "an http:// URL of an OpenTelemetry collector, such as http://otel-collector:4318",
                Some(&base),
            );
        }
        let endpoint = format!("{}/v1/traces", base.trim_end_matches('/'));
        let sampler = env.choice("OTEL_TRACES_SAMPLER", "parentbased_always_on", &SAMPLERS);
        let sample_ratio = match sampler.trim_start_matches("parentbased_") {
            "always_on" => 1.0,
            "always_off" => 0.0,
            _ => {
                let ratio = env.parse("OTEL_TRACES_SAMPLER_ARG", 1.0, "a ratio from 0 to 1, such as 0.1");
                if (0.0..=1.0).contains(&ratio) {
                    ratio
                } else {
                    let raw = env.optional("OTEL_TRACES_SAMPLER_ARG");
                    env.invalid("OTEL_TRACES_SAMPLER_ARG", "a ratio from 0 to 1, such as 0.1", raw.as_deref());
                    1.0
                }
            }
        };
        let headers = otlp_headers(env);
        Some(Self { endpoint, service_name: env.optional("OTEL_SERVICE_NAME"), sample_ratio, headers })
    }
}

/// `OTEL_EXPORTER_OTLP_HEADERS`: `name=value` pairs separated by commas, values percent-decoded.
fn otlp_headers(env: &mut Env) -> Vec<(String, Secret)> {
    let Some(raw) = env.optional("OTEL_EXPORTER_OTLP_HEADERS") else { return Vec::new() };
    let mut headers = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
        let parsed = pair.split_once('=').and_then(|(name, value)| {
            let name = name.trim();
            let value = percent_encoding::percent_decode_str(value.trim()).decode_utf8().ok()?;
            let valid = axum::http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && axum::http::HeaderValue::from_str(&value).is_ok();
            valid.then(|| (name.to_owned(), Secret::new(value)))
        });
        match parsed {
            Some(header) => headers.push(header),
            None => {
                // The value may be a credential: name only the variable.
                env.invalid(
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "comma-separated name=value pairs (valid HTTP headers)",
                    None,
                );
                return Vec::new();
            }
        }
    }
    headers
}

/// What every HTTP service needs: where to listen, how long to wait, how much
/// to take on at once.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub host: IpAddr,
    pub port: u16,
    /// Longest time one request may take before it is answered 504.
    pub request_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// `SHUTDOWN_DELAY`: how long a stopping service keeps serving while
    /// `/health/ready` answers 503, so load balancers take it out of rotation
    /// before it stops accepting.
    pub shutdown_delay: Duration,
    /// Largest request body accepted.
    pub body_limit: usize,
    /// `HEADER_READ_TIMEOUT`: a connection that has not sent a whole request
    /// head this long after it opened (or after its first byte, between
    /// requests) is closed.
    pub header_read_timeout: Duration,
    /// `KEEP_ALIVE_TIMEOUT`: a kept-alive connection idle this long after its
    /// last response is closed.
    pub keep_alive_timeout: Duration,
    /// `MAX_CONNECTIONS`: open connections; beyond them new ones wait in the
    /// kernel's backlog until one closes.
    pub max_connections: usize,
    /// `MAX_IN_FLIGHT`: requests being handled at once; beyond them a request is
    /// answered 503 at once (health probes excepted).
    pub max_in_flight: usize,
    /// `ADMIN_HOST` and `ADMIN_PORT`: where `/metrics` (and the health routes)
    /// are served, away from the public port; `None` (`ADMIN_PORT=none`): nowhere.
    pub admin: Option<SocketAddr>,
    /// Whether a request that arrives without a W3C `traceparent` starts a
    /// trace (the router, where clients come in) or is not traced at all (a
    /// subgraph: its readiness probes and key polls would each be a trace).
    /// Not a variable: set by the service.
    pub starts_traces: bool,
}

/// How far above the public port the admin listener is by default (auth
/// 4001 gives 5001).
const ADMIN_PORT_OFFSET: u16 = 1000;

impl HttpSettings {
    pub fn from_env(env: &mut Env, default_port: u16) -> Self {
        let port = env.port("PORT", default_port);
        Self {
            host: env.ip("HOST", IpAddr::from([0, 0, 0, 0])),
            port,
            request_timeout: env.duration(
                "REQUEST_TIMEOUT",
                "30s",
                Duration::from_millis(100),
                Duration::from_secs(600),
            ),
            shutdown_grace: env.duration("SHUTDOWN_GRACE", "20s", Duration::ZERO, Duration::from_secs(600)),
            shutdown_delay: env.duration("SHUTDOWN_DELAY", "5s", Duration::ZERO, Duration::from_secs(600)),
            body_limit: env.int_in("BODY_LIMIT_BYTES", 1 << 20, 1024, 1 << 30),
            header_read_timeout: env.duration(
                "HEADER_READ_TIMEOUT",
                "10s",
                Duration::from_millis(10),
                Duration::from_secs(600),
            ),
            // Longer than the idle timeout of the proxies that pool connections
            // to us (nginx's upstream keepalive_timeout and AWS load balancers:
            // 60 s; the router's own pool: 60 s), so the proxy always closes an
            // idle connection first and never sends a request on one we are closing.
            keep_alive_timeout: env.duration(
                "KEEP_ALIVE_TIMEOUT",
                "75s",
                Duration::from_millis(10),
                Duration::from_secs(3600),
            ),
            max_connections: env.int_in("MAX_CONNECTIONS", 10_000, 1, 1_000_000),
            max_in_flight: env.int_in("MAX_IN_FLIGHT", 1_000, 1, 1_000_000),
            admin: admin_address(env, port),
            starts_traces: false,
        }
    }
}

/// `ADMIN_HOST` (loopback) and `ADMIN_PORT` (the public port + 1000; with a
/// public port of 0, 0 too: a free one; `none`: no admin listener).
fn admin_address(env: &mut Env, port: u16) -> Option<SocketAddr> {
    let host = env.ip("ADMIN_HOST", IpAddr::from([127, 0, 0, 1]));
    let default = if port == 0 { Some(0) } else { port.checked_add(ADMIN_PORT_OFFSET) };
    let port = match env.optional("ADMIN_PORT") {
        Some(raw) if raw.eq_ignore_ascii_case("none") => return None,
        Some(_) => env.parse("ADMIN_PORT", 0, "a TCP port number (0 to 65535) or none"),
        None => match default {
            Some(port) => port,
            None => {
                env.invalid("ADMIN_PORT", "set when PORT + 1000 is past 65535 (a port number or none)", None);
                return None;
            }
        },
    };
    Some(SocketAddr::new(host, port))
}

/// Limits on one GraphQL document, the same for the router and every subgraph
/// (same variables, same defaults, same measure), so a document the router
/// lets through is never refused half-way by a subgraph, and a subgraph called
/// directly refuses what the router would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// `MAX_QUERY_LENGTH`: bytes of query text, checked before parsing.
    pub max_length: usize,
    /// `MAX_QUERY_TOKENS`: lexical tokens of the text, counted before parsing.
    pub max_tokens: usize,
    /// `MAX_QUERY_DEPTH`: nesting of fields (a root field is depth 1).
    pub max_depth: usize,
    /// `MAX_QUERY_FIELDS`: fields of the operation counted through every
    /// fragment spread and every duplicate (what execution would visit).
    pub max_fields: u64,
    /// `MAX_ALIASES`: aliased fields, counted like `max_fields`.
    pub max_aliases: u64,
    /// `MAX_ROOT_FIELDS`: fields of the root selection, through fragments.
    pub max_root_fields: u64,
    /// `MAX_DIRECTIVES_PER_FIELD`: directives on one field, fragment or spread.
    pub max_directives_per_field: usize,
    /// `MAX_QUERY_COST`: each field 1, times the page sizes of the list fields above it.
    pub max_cost: u64,
    /// `MAX_BATCH`: operations in one batched request.
    pub max_batch: usize,
}

impl Default for QueryLimits {
    /// Let GraphiQL's introspection query and the front end through; stop abuse.
    fn default() -> Self {
        Self {
            max_length: 32 * 1024,
            max_tokens: 10_000,
            max_depth: 16,
            max_fields: 1_000,
            max_aliases: 30,
            max_root_fields: 20,
            max_directives_per_field: 4,
            max_cost: 10_000,
            max_batch: 32,
        }
    }
}

impl QueryLimits {
    pub fn from_env(env: &mut Env) -> Self {
        let d = Self::default();
        Self {
            max_length: env.int_in("MAX_QUERY_LENGTH", d.max_length, 64, 16 * 1024 * 1024),
            max_tokens: env.int_in("MAX_QUERY_TOKENS", d.max_tokens, 16, 10_000_000),
            max_depth: env.int_in("MAX_QUERY_DEPTH", d.max_depth, 1, 1000),
            max_fields: env.int_in("MAX_QUERY_FIELDS", d.max_fields, 1, 10_000_000),
            max_aliases: env.int_in("MAX_ALIASES", d.max_aliases, 0, 100_000),
            max_root_fields: env.int_in("MAX_ROOT_FIELDS", d.max_root_fields, 1, 100_000),
            max_directives_per_field: env.int_in("MAX_DIRECTIVES_PER_FIELD", d.max_directives_per_field, 0, 1000),
            max_cost: env.int_in("MAX_QUERY_COST", d.max_cost, 1, u64::MAX / 4),
            max_batch: env.int_in("MAX_BATCH", d.max_batch, 1, 1000),
        }
    }
}

/// `SUBGRAPH_SHARED_SECRET` (or the file `SUBGRAPH_SHARED_SECRET_FILE` names):
/// what the router sends on every subgraph request
/// ([`crate::http::ROUTER_SECRET_HEADER`]) and what subgraphs require before
/// they answer GraphQL or downloads. Required: a service left without it would
/// silently serve whoever reaches its port, so it refuses to start unless told
/// `SUBGRAPH_SHARED_SECRET=disabled`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubgraphSecret {
    Required(Secret),
    /// `disabled`: the router sends none, subgraphs take requests from anyone.
    Disabled,
}

/// Shortest secret accepted: guessing it must be out of reach.
const MIN_SUBGRAPH_SECRET_LEN: usize = 32;

impl SubgraphSecret {
    pub fn from_env(env: &mut Env) -> Self {
        const NAME: &str = "SUBGRAPH_SHARED_SECRET";
        const FILE: &str = "SUBGRAPH_SHARED_SECRET_FILE";
        let value = match (env.optional(NAME), env.optional(FILE)) {
            (Some(_), Some(_)) => {
                env.invalid(FILE, &format!("unset when {NAME} is set (use one of them)"), None);
                return Self::Disabled;
            }
            (Some(inline), None) => inline,
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) => text.trim().to_owned(),
                Err(e) => {
                    env.invalid(FILE, &format!("a readable file ({})", e.kind()), Some(&path));
                    return Self::Disabled;
                }
            },
            (None, None) => {
                env.invalid(
                    NAME,
                    "set, to the same random value for the router and every subgraph (e.g. `openssl rand -hex 32`; \
                     or SUBGRAPH_SHARED_SECRET_FILE), or to `disabled` to let subgraphs answer anyone who reaches them",
                    None,
                );
                return Self::Disabled;
            }
        };
        if value == "disabled" {
            return Self::Disabled;
        }
        // Never echoed: it is the secret.
        let printable = value.bytes().all(|b| b.is_ascii_graphic());
        if value.len() < MIN_SUBGRAPH_SECRET_LEN || !printable {
            env.invalid(
                NAME,
                &format!("at least {MIN_SUBGRAPH_SECRET_LEN} printable ASCII characters without spaces, or `disabled`"),
                None,
            );
            return Self::Disabled;
        }
        Self::Required(Secret::new(value))
    }

    /// A fresh random value (256 bits, hex): what the monolith gives its four services.
    pub fn random_value() -> String {
        rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The secret, unless disabled.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            Self::Required(secret) => Some(secret),
            Self::Disabled => None,
        }
    }
}

/// How services other than auth check access tokens.
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    pub issuer: String,
    pub audience: String,
    /// How often auth's session revocations are read (`REVOCATION_POLL_INTERVAL`).
    pub revocation_poll_interval: Duration,
    /// How often auth's JWKS is fetched again (`JWKS_REFRESH_INTERVAL`).
    pub jwks_refresh_interval: Duration,
}

impl IdentitySettings {
    pub fn from_env(env: &mut Env) -> Self {
        Self {
            issuer: env.string("JWT_ISSUER", "taskgraph-auth"),
            audience: env.string("JWT_AUDIENCE", "taskgraph"),
            revocation_poll_interval: revocation_poll_interval(env),
            jwks_refresh_interval: env.duration(
                "JWKS_REFRESH_INTERVAL",
                "5m",
                Duration::from_secs(1),
                Duration::from_secs(24 * 3600),
            ),
        }
    }
}

/// `REVOCATION_POLL_INTERVAL`: how long a user's ended sessions may still be
/// honoured by a verifier (auth's own too).
pub fn revocation_poll_interval(env: &mut Env) -> Duration {
    env.duration("REVOCATION_POLL_INTERVAL", "1s", Duration::from_millis(50), Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_problem_with_the_variable_named() {
        let mut env = Env::from_pairs([("PORT", "eighty"), ("LOG_FORMAT", "xml")]);
        let _ = HttpSettings::from_env(&mut env, 4001);
        let _ = TelemetrySettings::from_env(&mut env);
        let err = env.finish().unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(err.0[0].starts_with("PORT must be a TCP port number"), "{err}");
        assert!(err.0[1].starts_with("LOG_FORMAT must be one of json, pretty"), "{err}");
    }

    #[test]
    fn traces_are_off_unless_an_endpoint_is_set_and_their_variables_are_checked() {
        let read = |pairs: &[(&str, &str)]| {
            let mut env = Env::from_pairs(pairs.iter().copied());
            let telemetry = TelemetrySettings::from_env(&mut env);
            env.finish().map(|()| telemetry.traces).map_err(|e| e.to_string())
        };
        assert!(read(&[]).unwrap().is_none());
        let on = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).unwrap().unwrap();
        assert_eq!(on.endpoint, "http://collector:4318/v1/traces");
        assert_eq!((on.sample_ratio, on.service_name.as_deref()), (1.0, None));
        let tuned = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_SERVICE_NAME", "edge"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k%3D1, x-team=core"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((tuned.sample_ratio, tuned.service_name.as_deref()), (0.25, Some("edge")));
        let headers: Vec<(&str, &str)> = tuned.headers.iter().map(|(n, v)| (n.as_str(), v.expose())).collect();
        assert_eq!(headers, [("x-api-key", "k=1"), ("x-team", "core")]);
        let off = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_TRACES_SAMPLER", "always_off")]);
        assert_eq!(off.unwrap().unwrap().sample_ratio, 0.0);

        let wrong = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318"),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization"),
        ])
        .unwrap_err();
        assert!(wrong.contains("OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// URL"), "{wrong}");
        assert!(wrong.contains("OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1"), "{wrong}");
        assert!(wrong.contains("OTEL_EXPORTER_OTLP_HEADERS must be comma-separated"), "{wrong}");
        let unknown = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_TRACES_SAMPLER", "jaeger")]);
        assert!(unknown.unwrap_err().starts_with("OTEL_TRACES_SAMPLER must be one of"));
    }

    #[test]
    fn defaults_apply_when_unset_and_durations_parse() {
        let mut env = Env::from_pairs([("REQUEST_TIMEOUT", "250ms")]);
        let http = HttpSettings::from_env(&mut env, 4001);
        env.finish().unwrap();
        assert_eq!(http.port, 4001);
        assert_eq!(http.request_timeout, Duration::from_millis(250));
    }

    #[test]
    fn the_admin_listener_is_on_loopback_1000_above_the_port_unless_told_otherwise() {
        let admin = |pairs: &[(&str, &str)], port| {
            let mut env = Env::from_pairs(pairs.iter().copied());
            let http = HttpSettings::from_env(&mut env, port);
            env.finish().map(|()| http.admin).map_err(|e| e.to_string())
        };
        assert_eq!(admin(&[], 4001), Ok(Some(([127, 0, 0, 1], 5001).into())));
        assert_eq!(
            admin(&[("PORT", "0")], 4001),
            Ok(Some(([127, 0, 0, 1], 0).into())),
            "a free one, as the public port"
        );
        assert_eq!(admin(&[("ADMIN_PORT", "none")], 4001), Ok(None));
        assert_eq!(admin(&[("ADMIN_HOST", "0.0.0.0"), ("ADMIN_PORT", "9100")], 4001), Ok(Some(([0; 4], 9100).into())));
        let past_the_end = admin(&[("PORT", "65000")], 4001).unwrap_err();
        assert!(past_the_end.starts_with("ADMIN_PORT must be set"), "{past_the_end}");
        let garbled = admin(&[("ADMIN_PORT", "metrics")], 4001).unwrap_err();
        assert!(garbled.starts_with("ADMIN_PORT must be a TCP port number (0 to 65535) or none"), "{garbled}");
    }

    #[test]
    fn the_subgraph_secret_is_required_unless_disabled_and_never_echoed() {
        let read = |pairs: &[(&str, &str)]| {
            let mut env = Env::from_pairs(pairs.iter().copied());
            let secret = SubgraphSecret::from_env(&mut env);
            env.finish().map(|()| secret).map_err(|e| e.to_string())
        };
        let unset = read(&[]).unwrap_err();
        assert!(unset.starts_with("SUBGRAPH_SHARED_SECRET must be set"), "{unset}");
        assert_eq!(read(&[("SUBGRAPH_SHARED_SECRET", "disabled")]), Ok(SubgraphSecret::Disabled));
        let long = "s3cret-".repeat(6);
        assert_eq!(read(&[("SUBGRAPH_SHARED_SECRET", &long)]), Ok(SubgraphSecret::Required(Secret::new(&long))));
        for weak in ["hunter2", "a secret with spaces in it that is long enough"] {
            let err = read(&[("SUBGRAPH_SHARED_SECRET", weak)]).unwrap_err();
            assert!(err.contains("at least 32 printable ASCII characters"), "{err}");
            assert!(!err.contains(weak), "never echoed: {err}");
        }

        let path = std::env::temp_dir().join(format!("subgraph-secret-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, format!("{long}\n")).unwrap();
        let file = path.display().to_string();
        assert_eq!(read(&[("SUBGRAPH_SHARED_SECRET_FILE", &file)]), Ok(SubgraphSecret::Required(Secret::new(&long))));
        let both = read(&[("SUBGRAPH_SHARED_SECRET_FILE", &file), ("SUBGRAPH_SHARED_SECRET", &long)]).unwrap_err();
        assert!(both.starts_with("SUBGRAPH_SHARED_SECRET_FILE must be unset"), "{both}");
        std::fs::remove_file(&path).unwrap();
        let missing = read(&[("SUBGRAPH_SHARED_SECRET_FILE", &file)]).unwrap_err();
        assert!(missing.starts_with("SUBGRAPH_SHARED_SECRET_FILE must be a readable file"), "{missing}");
        assert_ne!(SubgraphSecret::random_value(), SubgraphSecret::random_value());
    }

    #[test]
    fn shutdown_waits_five_seconds_before_draining_unless_told_otherwise() {
        let mut env = Env::from_pairs([("SHUTDOWN_DELAY", "0s")]);
        assert_eq!(HttpSettings::from_env(&mut env, 4001).shutdown_delay, Duration::ZERO);
        let mut env = Env::from_pairs(Vec::<(String, String)>::new());
        assert_eq!(HttpSettings::from_env(&mut env, 4001).shutdown_delay, Duration::from_secs(5));
        env.finish().unwrap();
    }
}
