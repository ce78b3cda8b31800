//! The pipeline's metrics, as handles registered once: looking a metric up by
//! name and labels hashes every label on each call, which at tens of thousands
//! of operations a second is a visible share of the router's own time.

use std::sync::OnceLock;

use metrics::{Counter, Histogram};

use super::prepare::OperationType;

pub struct PipelineMetrics {
    /// Indexed by [`kind`]: query, mutation, subscription, and unknown (the
    /// request failed before its operation was known).
    operations: [OperationMetrics; 4],
    overhead: Histogram,
    plan_cache_hit: Counter,
    plan_cache_miss: Counter,
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
        overhead: metrics::histogram!(kit::metrics::ROUTER_OVERHEAD),
        plan_cache_hit: metrics::counter!("query_plan_cache_total", "result" => "hit"),
        plan_cache_miss: metrics::counter!("query_plan_cache_total", "result" => "miss"),
    })
}

impl OperationMetrics {
    fn new(operation_type: &'static str) -> Self {
        let operations = |outcome: &'static str| metrics::counter!("graphql_operations_total", "operation_type" => operation_type, "outcome" => outcome);
        Self {
            success: operations("success"),
            partial: operations("partial"),
            request_error: operations("request_error"),
            duration: metrics::histogram!("graphql_operation_duration_seconds", "operation_type" => operation_type),
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

    pub fn plan_cache(&self, hit: bool) {
        if hit { self.plan_cache_hit.increment(1) } else { self.plan_cache_miss.increment(1) }
    }
}
