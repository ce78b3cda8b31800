//! `GET /health/live` and `GET /health/ready`.
//!
//! Readiness asks every dependency. A *required* one that fails makes the answer
//! 503; an optional one (a broker the outbox buffers for, a cache with a database
//! behind it) shows as `degraded` but keeps the instance in rotation.
//!
//! Once shutdown begins, readiness answers 503 `draining` without asking
//! anything (see [`Health::start_draining`]) while liveness stays 200.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// One dependency.
pub trait Check: Send + Sync {
    fn name(&self) -> &'static str;
    /// Whether a failure makes the instance unready (503) or only degraded.
    fn required(&self) -> bool;
    /// `Err` carries a short, non-sensitive reason.
    fn check(&self) -> CheckFuture<'_>;
    /// More of the dependency's state for its entry in the JSON (read once
    /// `check` has finished), e.g. each subgraph's circuit and last probe.
    fn details(&self) -> Option<Value> {
        None
    }
}

/// A check shared with the code that uses the dependency (e.g. the cache).
impl<T: Check + ?Sized> Check for Arc<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn required(&self) -> bool {
        (**self).required()
    }

    fn check(&self) -> CheckFuture<'_> {
        (**self).check()
    }

    fn details(&self) -> Option<Value> {
        (**self).details()
    }
}

/// The set of checks a service registers.
#[derive(Clone)]
pub struct Health {
    service: &'static str,
    checks: Arc<Vec<Box<dyn Check>>>,
    /// Set when shutdown begins; shared by every clone (public and admin listener).
    draining: Arc<AtomicBool>,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

impl Health {
    pub fn new(service: &'static str, checks: Vec<Box<dyn Check>>) -> Self {
        Self { service, checks: Arc::new(checks), draining: Arc::default() }
    }

    /// From now on readiness is 503 `draining`: the service is stopping, and
    /// load balancers should send it nothing new.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Runs every check concurrently; returns the status code and JSON body.
    pub async fn readiness(&self) -> (StatusCode, Value) {
        if self.is_draining() {
            return (StatusCode::SERVICE_UNAVAILABLE, json!({ "status": "draining", "service": self.service }));
        }
        let results = futures::future::join_all(self.checks.iter().map(|c| async move {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, c.check()).await {
                Ok(result) => result,
                Err(_) => Err("timed out".to_owned()),
            };
            (c, outcome)
        }))
        .await;
        let mut status = "ready";
        let mut checks = Map::new();
        for (check, outcome) in results {
            let mut entry = match outcome {
                Ok(()) => json!({ "status": "up" }),
                Err(reason) => {
                    tracing::warn!(dependency = check.name(), %reason, "readiness check failed");
                    if check.required() {
                        status = "unavailable";
                    } else if status == "ready" {
                        status = "degraded";
                    }
                    json!({ "status": "down", "required": check.required(), "error": reason })
                }
            };
            if let (Some(Value::Object(details)), Value::Object(entry)) = (check.details(), &mut entry) {
                for (key, value) in details {
                    entry.entry(key).or_insert(value);
                }
            }
            checks.insert(check.name().to_owned(), entry);
        }
        let code = if status == "unavailable" { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
        (code, json!({ "status": status, "service": self.service, "checks": checks }))
    }
}

pub async fn live(State(health): State<Health>) -> impl IntoResponse {
    Json(json!({ "status": "live", "service": health.service }))
}

pub async fn ready(State(health): State<Health>) -> impl IntoResponse {
    let (code, body) = health.readiness().await;
    (code, Json(body))
}
