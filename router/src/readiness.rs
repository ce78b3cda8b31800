//! The router's `/health/ready`: whether this router can serve, not whether
//! every subgraph can. A load balancer takes a router out of rotation when it
//! answers 503; a subgraph that is down would make every router answer so at
//! once, and with all of them out nobody gets even the fields the other
//! subgraphs could give. So the supergraph being loaded is the one required
//! check, and each subgraph's state (its probe, its circuit) is reported
//! beside it, `degraded` when one is down, and as metrics
//! (`subgraph_up{subgraph}`, `subgraph_circuit_state{subgraph}`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use axum::http::HeaderMap;
use futures::future::join_all;
use platform::health::{Check, CheckFuture};
use serde_json::{Value, json};

use crate::pipeline::SharedRouter;
use crate::subgraphs::Subgraph;

/// Longest wait for one subgraph's probe: under the platform's bound on a whole check
/// (2 s), so a hung subgraph is reported as such instead of the check timing out.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Required: a supergraph is loaded (the router cannot start without one, and
/// a reload that does not build keeps the last good one).
pub struct SupergraphCheck(pub SharedRouter);

impl Check for SupergraphCheck {
    fn name(&self) -> &'static str {
        "supergraph"
    }

    fn required(&self) -> bool {
        true
    }

    fn check(&self) -> CheckFuture<'_> {
        let loaded = !self.0.supergraph.load().subgraphs.is_empty();
        Box::pin(async move { if loaded { Ok(()) } else { Err("no subgraph to plan over".to_owned()) } })
    }

    fn details(&self) -> Option<Value> {
        let supergraph = self.0.supergraph.load();
        Some(json!({ "version": supergraph.version, "subgraphs": supergraph.subgraphs.len() }))
    }
}

/// Not required: each subgraph answers `{ __typename }` (probed at every
/// readiness request, through its circuit breaker), reported with its circuit's state.
pub struct SubgraphsCheck {
    router: SharedRouter,
    /// Each subgraph's latest probe, by name.
    probes: Mutex<BTreeMap<String, Probe>>,
}

#[derive(Debug, Clone)]
struct Probe {
    error: Option<String>,
    latency: Duration,
    /// When it last answered, if ever since the router started.
    last_success: Option<SystemTime>,
}

impl SubgraphsCheck {
    pub fn new(router: SharedRouter) -> Self {
        Self { router, probes: Mutex::default() }
    }

    async fn probe(&self, subgraph: &Subgraph) -> (String, Option<String>, Duration) {
        let body = br#"{"query":"{ __typename }"}"#.to_vec();
        let started = Instant::now();
        let headers = HeaderMap::new();
        let sent = self.router.subgraphs.send(subgraph, body, &headers, false);
        let error = match tokio::time::timeout(PROBE_TIMEOUT, sent).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("timed out".to_owned()),
        };
        (subgraph.name.clone(), error, started.elapsed())
    }

    fn record(&self, results: Vec<(String, Option<String>, Duration)>) -> Vec<String> {
        let mut probes = self.probes.lock().expect("probe lock");
        // Subgraphs a reload removed are no longer reported.
        probes.retain(|name, _| results.iter().any(|(probed, ..)| probed == name));
        let mut down = Vec::new();
        for (name, error, latency) in results {
            metrics::gauge!("subgraph_up", "subgraph" => name.clone()).set(if error.is_none() { 1.0 } else { 0.0 });
            let earlier = probes.get(&name).and_then(|p| p.last_success);
            let last_success = if error.is_none() { Some(SystemTime::now()) } else { earlier };
            if error.is_some() {
                down.push(name.clone());
            }
            probes.insert(name, Probe { error, latency, last_success });
        }
        down
    }
}

impl Check for SubgraphsCheck {
    fn name(&self) -> &'static str {
        "subgraphs"
    }

    fn required(&self) -> bool {
        false
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            let supergraph = self.router.supergraph.load_full();
            let results = join_all(supergraph.subgraphs.values().map(|subgraph| self.probe(subgraph))).await;
            let down = self.record(results);
            if down.is_empty() { Ok(()) } else { Err(format!("down: {}", down.join(", "))) }
        })
    }

    /// `{"<subgraph>": {"status", "circuit", "latencyMs", "lastSuccessAt", "error"}}`.
    fn details(&self) -> Option<Value> {
        let probes = self.probes.lock().expect("probe lock");
        let each = probes.iter().map(|(name, probe)| {
            let mut entry = json!({
                "status": if probe.error.is_none() { "up" } else { "down" },
                "circuit": self.router.subgraphs.circuit(name),
                "latencyMs": (probe.latency.as_secs_f64() * 1e4).round() / 10.0,
                "lastSuccessAt": probe.last_success.map(|at| humantime::format_rfc3339_millis(at).to_string()),
            });
            if let Some(error) = &probe.error {
                entry["error"] = json!(error);
            }
            (name.clone(), entry)
        });
        Some(Value::Object(each.collect()))
    }
}
