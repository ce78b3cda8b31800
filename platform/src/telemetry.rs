//! Structured logs: JSON by default, human-readable with `LOG_FORMAT=pretty`.
//!
//! Request spans carry the request id (see [`crate::http`]), so every line a
//! request causes, errors included, can be correlated. Headers are never logged.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::TelemetrySettings;

/// Installs the global subscriber. Safe to call more than once (later calls are no-ops).
pub fn init(settings: &TelemetrySettings) {
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if settings.pretty {
        registry.with(fmt::layer().pretty()).try_init()
    } else {
        registry.with(fmt::layer().json().flatten_event(true).with_current_span(true).with_span_list(false)).try_init()
    };
    // A second init (tests spawning many apps) keeps the first subscriber.
    let _ = result;
}

/// Test helper: logs only when `TEST_LOG` is set, so test output stays quiet.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init(&TelemetrySettings { pretty: true, level: std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".into()) });
    }
}
