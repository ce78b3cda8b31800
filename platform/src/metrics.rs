//! Prometheus metrics: one process-wide recorder, rendered at `GET /metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets from 1 ms to 10 s: our requests live in the low milliseconds,
/// which the seed's 100 ms floor could not see.
pub const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";

/// Buckets from 5 µs to 100 ms, for work measured in microseconds.
pub const FINE_LATENCY_BUCKETS: &[f64] =
    &[0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];

/// The router's own time per operation (excluding waits on subgraphs): tens of
/// microseconds, invisible in millisecond buckets.
pub const ROUTER_OVERHEAD: &str = "router_overhead_seconds";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder on first use and returns its handle.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("bucket list is not empty")
            // A full match wins over the suffix.
            .set_buckets_for_metric(Matcher::Full(ROUTER_OVERHEAD.into()), FINE_LATENCY_BUCKETS)
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed (a test harness): then our
        // handle renders an empty registry rather than crashing the service.
        let _ = metrics::set_global_recorder(recorder);
        describe_platform();
        spawn_upkeep(handle.clone());
        handle
    })
}

/// HELP text of every metric the platform and kit record (`promtool check metrics` wants one
/// on each). A service's own metrics are described by the service, after
/// [`handle`]; a description only shows once its metric has a series.
fn describe_platform() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "Duration of HTTP requests to a service's own routes (probes excluded), by matched route template and status code."
    );
    describe_gauge!("http_connections_open", "HTTP connections open on the service's public listener.");
    describe_gauge!(
        "http_requests_in_flight",
        "Requests being handled now (counted against MAX_IN_FLIGHT; probes excluded)."
    );
    describe_gauge!(
        "http_requests_in_flight_limit",
        "MAX_IN_FLIGHT: requests handled at once before further ones are shed."
    );
    describe_counter!(
        "http_requests_shed_total",
        "Requests refused with 503 because MAX_IN_FLIGHT requests were in flight."
    );
    describe_counter!(
        "graphql_operations_total",
        "GraphQL operations executed, by operation type and outcome: success (no errors), partial (data and errors), request_error (no data)."
    );
    describe_counter!(
        "graphql_errors_total",
        "GraphQL errors answered, by extensions.code (codes outside the known set are counted as OTHER)."
    );
    describe_counter!(
        "events_published_total",
        "Outbox events published to the broker (or handed to the in-process bus), by routing key."
    );
    describe_gauge!("events_outbox_unpublished_events", "Outbox rows not yet published.");
    describe_gauge!(
        "events_outbox_oldest_unpublished_age_seconds",
        "Age of the oldest outbox row not yet published (0 when none waits)."
    );
    describe_counter!(
        "events_consumed_total",
        "Event deliveries handled by a consumer, by queue, routing key and outcome (processed, duplicate, failed: an attempt to be retried, dead_lettered)."
    );
    describe_counter!("events_dead_lettered_total", "Events a consumer gave up on and moved to its dead-letter queue.");
    describe_gauge!(
        "events_dead_letter_queue_messages",
        "Messages waiting in a consumer's dead-letter queue (<queue>.dead), read every 15 s."
    );
    describe_gauge!("events_queue_messages", "Messages ready in a consumer's work queue, read every 15 s.");
    describe_histogram!(
        "events_processing_lag_seconds",
        Unit::Seconds,
        "Time from an event's creation (in the outbox transaction) to its processing by a consumer."
    );
    describe_counter!("cache_hits_total", "Cache-aside lookups answered from the cache, by cache.");
    describe_counter!(
        "cache_local_hits_total",
        "Cache hits answered from the replica's local tier (part of cache_hits_total)."
    );
    describe_counter!("cache_misses_total", "Cache-aside lookups that went to the loader (Postgres).");
    describe_counter!(
        "cache_errors_total",
        "Redis calls of a cache that failed or timed out (the request fell back to Postgres)."
    );
    describe_counter!(
        "cache_skipped_total",
        "Values not cached or entries not trusted, by reason (too_large: over CACHE_MAX_ENTRY_BYTES; invalidation_pending: the owner's invalidation has not reached Redis yet; redis_recovering: Redis answered again less than a second ago)."
    );
    describe_gauge!(
        "cache_pending_invalidations",
        "Owners whose invalidation Redis has not taken yet; answered from Postgres until it has."
    );
    describe_counter!(
        "http_requests_without_router_secret_total",
        "Requests to a subgraph's GraphQL or download routes refused with 403 for a missing or wrong router secret."
    );
    describe_gauge!(
        "db_pool_connections",
        "Postgres connections of the service's pool, by state (in_use, idle), sampled every 5 s."
    );
    describe_gauge!("db_pool_max_connections", "Size limit of the service's Postgres pool (DATABASE_MAX_CONNECTIONS).");
    describe_counter!(
        "identity_refresh_failures_total",
        "Failed refreshes of the token verifier's sources (jwks, revocations)."
    );
}

/// The `extensions.code` values counted as themselves in
/// `graphql_errors_total`; any other is counted as `OTHER`, so a subgraph
/// that is not ours cannot grow the label set without bound.
pub const GRAPHQL_ERROR_CODES: &[&str] = &[
    "BAD_USER_INPUT",
    "BAD_REQUEST",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "OPERATION_RESOLUTION_FAILURE",
    "METHOD_NOT_ALLOWED",
    "INTROSPECTION_DISABLED",
    "CSRF_SUSPECTED",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "PAYLOAD_TOO_LARGE",
    "RATE_LIMITED",
    "INTERNAL",
    "UNAVAILABLE",
    "SERVICE_UNAVAILABLE",
    "SUBGRAPH_UNAVAILABLE",
    "SUBGRAPH_ERROR",
    "REQUEST_TIMEOUT",
    "OTHER",
];

/// `graphql_errors_total` of one service, as handles registered once, one per
/// known code (see [`GRAPHQL_ERROR_CODES`]).
pub struct GraphqlErrors {
    counters: Vec<metrics::Counter>,
}

impl GraphqlErrors {
    pub fn new(service: &'static str) -> Self {
        // Handles made before the recorder is installed would count nowhere.
        handle();
        let counters = GRAPHQL_ERROR_CODES
            .iter()
            .map(|code| metrics::counter!("graphql_errors_total", "service" => service, "code" => *code))
            .collect();
        Self { counters }
    }

    /// One error answered, by its `extensions.code`.
    pub fn count(&self, code: Option<&str>) {
        let other = GRAPHQL_ERROR_CODES.len() - 1;
        let index = code.and_then(|code| GRAPHQL_ERROR_CODES.iter().position(|known| *known == code)).unwrap_or(other);
        self.counters[index].increment(1);
    }
}

/// How one GraphQL operation ended, as `graphql_operations_total{outcome}` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success = 0,
    Partial = 1,
    RequestError = 2,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Success, Outcome::Partial, Outcome::RequestError];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Partial => "partial",
            Outcome::RequestError => "request_error",
        }
    }
}

/// A subgraph's `graphql_operations_total` and `graphql_errors_total`, as
/// handles registered once: every known label value exists from the start, so
/// a `rate()` over them is 0, not absent.
pub struct GraphqlMetrics {
    /// By operation type (query, mutation, unknown), then [`Outcome`].
    operations: [[metrics::Counter; 3]; 3],
    errors: GraphqlErrors,
}

impl GraphqlMetrics {
    pub fn new(service: &'static str) -> Self {
        handle();
        let operations = ["query", "mutation", "unknown"].map(|operation_type| {
            Outcome::ALL.map(|outcome| {
                metrics::counter!("graphql_operations_total", "service" => service, "operation_type" => operation_type, "outcome" => outcome.as_str())
            })
        });
        Self { operations, errors: GraphqlErrors::new(service) }
    }

    /// One operation: `mutation` is `None` when its type is not known (it
    /// failed before an operation was selected).
    pub fn operation(&self, mutation: Option<bool>, outcome: Outcome) {
        let kind = match mutation {
            Some(false) => 0,
            Some(true) => 1,
            None => 2,
        };
        self.operations[kind][outcome as usize].increment(1);
    }

    /// One error answered, by its `extensions.code`.
    pub fn error(&self, code: Option<&str>) {
        self.errors.count(code);
    }
}

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Histogram samples are held one by one until upkeep folds them into buckets,
/// which a scrape also does: without this, a process nobody scrapes (no
/// Prometheus, or a scrape interval far longer than usual) would grow by every
/// sample it records, about 1 MB/s per busy histogram at 25,000 requests/s.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            handle.run_upkeep();
        }
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, "metrics upkeep thread not started: histogram samples are folded only on scrape");
    }
}

/// The full scrape body: application metrics plus process metrics.
pub fn render() -> String {
    let handle = handle();
    handle.run_upkeep();
    let mut body = handle.render();
    body.push_str(&process::render());
    body
}

/// Process metrics read from procfs on each scrape, with the names Prometheus'
/// own client libraries use, so standard dashboards work.
mod process {
    use std::fmt::Write;

    pub fn render() -> String {
        let mut out = String::new();
        if let Some(stats) = read() {
            let _ = writeln!(out, "# HELP process_resident_memory_bytes Resident memory size in bytes.");
            let _ = writeln!(out, "# TYPE process_resident_memory_bytes gauge");
            let _ = writeln!(out, "process_resident_memory_bytes {}", stats.rss_bytes);
            let _ = writeln!(out, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.");
            let _ = writeln!(out, "# TYPE process_cpu_seconds_total counter");
            let _ = writeln!(out, "process_cpu_seconds_total {}", stats.cpu_seconds);
            let _ = writeln!(out, "# HELP process_open_fds Number of open file descriptors.");
            let _ = writeln!(out, "# TYPE process_open_fds gauge");
            let _ = writeln!(out, "process_open_fds {}", stats.open_fds);
            if let Some(limit) = stats.memory_limit_bytes {
                let _ = writeln!(
                    out,
                    "# HELP process_memory_limit_bytes Memory the process may use: its cgroup's memory.max, else the machine's memory."
                );
                let _ = writeln!(out, "# TYPE process_memory_limit_bytes gauge");
                let _ = writeln!(out, "process_memory_limit_bytes {limit}");
            }
        }
        out
    }

    struct Stats {
        rss_bytes: u64,
        cpu_seconds: f64,
        open_fds: usize,
        memory_limit_bytes: Option<u64>,
    }

    #[cfg(target_os = "linux")]
    fn read() -> Option<Stats> {
        // Clock ticks per second is 100 on every Linux platform we ship to.
        const TICKS_PER_SECOND: f64 = 100.0;
        const PAGE_SIZE: u64 = 4096;
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the full line, 12 and 13 here (from 0).
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
        Some(Stats {
            rss_bytes: resident_pages * PAGE_SIZE,
            cpu_seconds: (utime + stime) / TICKS_PER_SECOND,
            open_fds,
            memory_limit_bytes: memory_limit(),
        })
    }

    /// The cgroup v2 limit (`max` means none), else MemTotal: what RSS is
    /// measured against before the kernel's OOM killer steps in.
    #[cfg(target_os = "linux")]
    fn memory_limit() -> Option<u64> {
        let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok();
        if let Some(limit) = cgroup.and_then(|text| text.trim().parse().ok()) {
            return Some(limit);
        }
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    #[cfg(not(target_os = "linux"))]
    fn read() -> Option<Stats> {
        None
    }
}
