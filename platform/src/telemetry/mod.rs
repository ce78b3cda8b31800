//! Structured logs, and traces when asked for.
//!
//! Logs are JSON lines by default (`LOG_FORMAT=pretty` for people). Each line
//! carries the fields of the span it was written in: a request's (its id,
//! route, user and trace, see [`crate::http`]) or an event's (its queue, id and
//! trace, see `kit::events::consumer`). Spans made for traces alone
//! ([`TRACE_ONLY`]: a subgraph fetch, a Redis call, a publish) stay out of the
//! logs, so a line written inside one still names its request. Headers are
//! never logged.
//!
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set ([`TraceSettings`]), spans are also
//! exported over OTLP/HTTP (protobuf) in batches, from a thread of their own
//! through a bounded queue: a slow or dead collector costs dropped spans, never
//! a stalled request or a growing heap. Without it no OpenTelemetry layer is
//! installed at all, and the trace-only spans are never even built.
//!
//! [`TraceSettings`]: crate::config::TraceSettings

mod context;
mod export;
mod fields;
mod statements;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{EnvFilter, Layer, Registry, filter, fmt, prelude::*};

pub use context::{
    current_traceparent, follow_traceparent, inject, join_request, record_http_status, trace_id, traceparent,
};

use crate::config::TelemetrySettings;

/// The target of spans that exist for traces only: never logged, and with
/// tracing off never built (nothing is interested in them).
pub const TRACE_ONLY: &str = "taskgraph::trace";

/// Set once spans are exported: callers skip trace-only work otherwise.
static TRACING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports traces.
pub fn tracing_enabled() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// What [`init`] installed. Keep it until the service has stopped: dropping it
/// exports the spans still queued (waiting a few seconds at most) and ends tracing.
#[must_use = "dropping it ends tracing at once"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports every span that has ended so far (blocks until the collector
    /// answered or the export timed out; tests, and never on an async worker).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(e) = provider.force_flush()
        {
            tracing::warn!(error = %e, "could not export the queued spans");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            TRACING.store(false, Ordering::Relaxed);
            if let Err(e) = provider.shutdown() {
                // The subscriber may be gone with the runtime: say it plainly.
                eprintln!("could not export the last spans: {e}");
            }
        }
    }
}

/// Installs the global subscriber: logs to stdout, and traces when
/// `settings.traces` says where. Safe to call more than once (later calls
/// install nothing and return an inert [`Telemetry`]). `service` names the
/// spans' source unless `OTEL_SERVICE_NAME` does.
pub fn init(settings: &TelemetrySettings, service: &'static str) -> Telemetry {
    init_with_writer(settings, service, std::io::stdout)
}

/// [`init`] writing the logs to `writer` (tests read them back).
pub fn init_with_writer<W>(settings: &TelemetrySettings, service: &'static str, writer: W) -> Telemetry
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let mut layers = log_layer(settings, writer);
    let provider = match &settings.traces {
        None => None,
        Some(traces) => match export::provider(traces, service) {
            Ok(provider) => Some(provider),
            Err(e) => {
                eprintln!("{service}: cannot export traces ({e}); logging only");
                None
            }
        },
    };
    if let Some(provider) = &provider {
        let tracer = provider.tracer("taskgraph");
        // Layered, not a Vec: a Vec of layers does not tell them which
        // subscriber they joined, and the statements layer needs to know.
        layers = layers.and_then(export::span_layer(tracer.clone())).and_then(statements::layer(tracer)).boxed();
    }
    // A second init (tests spawning many apps) keeps the first subscriber.
    if tracing_subscriber::registry().with(layers).try_init().is_err() {
        if let Some(provider) = provider {
            let _ = provider.shutdown();
        }
        return Telemetry { provider: None };
    }
    TRACING.store(provider.is_some(), Ordering::Relaxed);
    Telemetry { provider }
}

/// The log lines: filtered by `LOG_LEVEL`, without the trace-only spans.
fn log_layer<W>(settings: &TelemetrySettings, writer: W) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let level = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = filter::FilterExt::and(level, filter::filter_fn(|metadata| metadata.target() != TRACE_ONLY));
    if settings.pretty {
        fmt::layer().pretty().with_writer(writer).with_filter(filter).boxed()
    } else {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .fmt_fields(fields::LogFields)
            .with_writer(writer)
            .with_filter(filter)
            .boxed()
    }
}

/// Test helper: logs only when `TEST_LOG` is set, so test output stays quiet.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".into());
        // Nothing to export, so nothing for the guard to flush.
        drop(init(&TelemetrySettings { pretty: true, level, traces: None }, "test"));
    }
}
