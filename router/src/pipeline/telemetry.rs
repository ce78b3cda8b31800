//! The pipeline's metrics, as handles registered once: looking a metric up by
//! name and labels hashes every label on each call, which at tens of thousands
//! of operations a second is a visible share of the router's own time.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use metrics::{Counter, Histogram};

use super::prepare::OperationType;

pub struct PipelineMetrics {
    /// Indexed by [`kind`]: query, mutation, subscription, and unknown (the
    /// request failed before its operation was known).
    operations: [OperationMetrics; 4],
    overhead: Histogram,
    plan_cache_hit: Counter,
    plan_cache_miss: Counter,
    deduplicated: Counter,
    errors: platform::metrics::GraphqlErrors,
    names: OperationNames,
}

/// `graphql_operations_by_name_total{service,operation_name}`: the first
/// [`MAX_OPERATION_NAMES`] names seen get a series each, later ones share
/// `other`, unnamed operations `anonymous`, so clients cannot grow the label
/// set without bound. A name's handle is looked up once per preparation (and
/// kept with the prepared operation in the plan cache), not per request.
struct OperationNames {
    counters: Mutex<HashMap<String, Counter>>,
}

/// Operation names with a series of their own.
pub const MAX_OPERATION_NAMES: usize = 100;

impl OperationNames {
    fn counter(&self, name: Option<&str>) -> Counter {
        let series = |name: String| metrics::counter!("graphql_operations_by_name_total", "service" => "router", "operation_name" => name);
        let Some(name) = name else { return series("anonymous".to_owned()) };
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(counter) = counters.get(name) {
            return counter.clone();
        }
        if counters.len() >= MAX_OPERATION_NAMES {
            return series("other".to_owned());
        }
        let counter = series(name.to_owned());
        counters.insert(name.to_owned(), counter.clone());
        counter
    }
}

struct OperationMetrics {
    success: Counter,
    partial: Counter,
    request_error: Counter,
    duration: Histogram,
}

/// The handles, registered with whatever recorder is installed at the first
/// operation (services install theirs before they serve).
pub fn get() -> &'static PipelineMetrics {
    static METRICS: OnceLock<PipelineMetrics> = OnceLock::new();
    METRICS.get_or_init(|| PipelineMetrics {
        operations: ["query", "mutation", "subscription", "unknown"].map(OperationMetrics::new),
        overhead: metrics::histogram!(platform::metrics::ROUTER_OVERHEAD),
        plan_cache_hit: metrics::counter!("query_plan_cache_total", "result" => "hit"),
        plan_cache_miss: metrics::counter!("query_plan_cache_total", "result" => "miss"),
        deduplicated: metrics::counter!("router_requests_deduplicated_total"),
        errors: platform::metrics::GraphqlErrors::new("router"),
        names: OperationNames { counters: Mutex::new(HashMap::new()) },
    })
}

impl OperationMetrics {
    fn new(operation_type: &'static str) -> Self {
        let operations = |outcome: &'static str| metrics::counter!("graphql_operations_total", "service" => "router", "operation_type" => operation_type, "outcome" => outcome);
        Self {
            success: operations("success"),
            partial: operations("partial"),
            request_error: operations("request_error"),
            duration: metrics::histogram!("graphql_operation_duration_seconds", "service" => "router", "operation_type" => operation_type),
        }
    }
}

impl PipelineMetrics {
    /// One finished operation: its outcome (as `GraphqlResponse::outcome`
    /// names it), its duration and the router's own share of it, in seconds.
    pub fn operation(&self, operation_type: Option<OperationType>, outcome: &str, elapsed: f64, overhead: f64) {
        let kind = match operation_type {
            Some(OperationType::Query) => 0,
            Some(OperationType::Mutation) => 1,
            Some(OperationType::Subscription) => 2,
            None => 3,
        };
        let operation = &self.operations[kind];
        match outcome {
            "success" => operation.success.increment(1),
            "partial" => operation.partial.increment(1),
            _ => operation.request_error.increment(1),
        }
        operation.duration.record(elapsed);
        self.overhead.record(overhead);
    }

    /// The errors of one response, by `extensions.code`.
    pub fn errors(&self, errors: &[serde_json::Value]) {
        for error in errors {
            self.errors.count(error.pointer("/extensions/code").and_then(serde_json::Value::as_str));
        }
    }

    /// The handle counting operations named `name` (see [`OperationNames`]).
    pub fn operation_name(&self, name: Option<&str>) -> Counter {
        self.names.counter(name)
    }

    /// A query that joined an identical one's execution in flight.
    pub fn deduplicated(&self) {
        self.deduplicated.increment(1);
    }

    pub fn plan_cache(&self, hit: bool) {
        if hit { self.plan_cache_hit.increment(1) } else { self.plan_cache_miss.increment(1) }
    }
}

/// HELP text of the router's metrics (`promtool check metrics` wants one on
/// each), and its series registered at 0 so they exist before the first request.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    platform::metrics::handle();
    describe_histogram!(
        "graphql_operation_duration_seconds",
        Unit::Seconds,
        "Duration of GraphQL operations at the router, from decoding to the projected answer."
    );
    describe_histogram!(
        platform::metrics::ROUTER_OVERHEAD,
        Unit::Seconds,
        "The router's own time per operation: its duration less the time spent waiting on subgraphs."
    );
    describe_counter!(
        "graphql_operations_by_name_total",
        "GraphQL operations prepared and executed at the router, by operation name (the first 100 names; later ones are other, unnamed ones anonymous)."
    );
    describe_counter!("query_plan_cache_total", "Plan cache lookups by result (hit, miss).");
    describe_counter!(
        "router_requests_deduplicated_total",
        "Client queries that joined an identical query's execution in flight instead of running their own (REQUEST_DEDUPE)."
    );
    describe_counter!(
        "subgraph_fetches_deduplicated_total",
        "Subgraph query fetches that joined an identical fetch's exchange in flight instead of sending their own (SUBGRAPH_DEDUPE)."
    );
    describe_counter!(
        "supergraph_reloads_total",
        "Changed supergraph files by outcome (success: now in service; refused: broken, the old one kept)."
    );
    describe_counter!(
        "rate_limited_total",
        "Requests or fields refused by a rate limit, by policy (ip, user, login, refresh, password)."
    );
    describe_counter!(
        "rate_limit_store_errors_total",
        "Failed or slow calls to the Redis rate-limit store (the local buckets decided)."
    );
    describe_histogram!(
        "subgraph_request_duration_seconds",
        Unit::Seconds,
        "Duration of the router's GraphQL requests to a subgraph, by outcome (success, timeout, error)."
    );
    describe_gauge!(
        "subgraph_circuit_state",
        "State of the router's circuit breaker per subgraph: 0 closed, 1 half-open, 2 open."
    );
    describe_counter!(
        "subgraph_requests_refused_total",
        "Subgraph requests failed fast because the subgraph's circuit is open."
    );
    describe_counter!("subgraph_retries_total", "Retries of failed subgraph query fetches.");
    describe_gauge!(
        "subgraph_up",
        "Whether the subgraph answered the router's last readiness probe ({ __typename }): 1 up, 0 down."
    );
    describe_counter!(
        "subgraph_connections_exhausted_total",
        "Subgraph requests that found no connection free within SUBGRAPH_CONNECTION_WAIT."
    );
    get().deduplicated.increment(0);
}
