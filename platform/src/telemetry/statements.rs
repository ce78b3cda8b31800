//! A span per SQL statement, for every query of every service without
//! touching one: sqlx reports each finished statement as a `sqlx::query`
//! event (at debug, with its text and how long it took), and this layer turns
//! the ones run inside a sampled span into client spans below it, timed from
//! the statement's start to its end.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt};
use opentelemetry::{KeyValue, trace::SpanBuilder};
use opentelemetry_sdk::trace::SdkTracer;
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry, filter};

/// The target sqlx reports statements under.
const STATEMENTS: &str = "sqlx::query";

/// The layer, seeing only sqlx's statement events.
pub(super) fn layer(tracer: SdkTracer) -> Box<dyn Layer<Registry> + Send + Sync> {
    StatementSpans { tracer, dispatch: OnceLock::new() }
        .with_filter(filter::filter_fn(|metadata| metadata.is_event() && metadata.target() == STATEMENTS))
        .boxed()
}

struct StatementSpans {
    tracer: SdkTracer,
    /// The subscriber this layer is part of, to read the OpenTelemetry
    /// context of the span a statement ran in (weak: it owns this layer).
    dispatch: OnceLock<WeakDispatch>,
}

impl<S> Layer<S> for StatementSpans
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        let _ = self.dispatch.set(dispatch.downgrade());
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // The span the statement ran in, seen by every layer (this one's own
        // filter sees no spans at all).
        let Some(id) = ctx.current_span().id().cloned() else { return };
        let Some(dispatch) = self.dispatch.get().and_then(WeakDispatch::upgrade) else { return };
        let Some(parent) = tracing_opentelemetry::get_otel_context(&id, &dispatch) else { return };
        if !parent.span().span_context().is_sampled() {
            return;
        }
        let mut statement = Statement::default();
        event.record(&mut statement);
        let ended = SystemTime::now();
        let started = ended.checked_sub(statement.elapsed).unwrap_or(ended);
        let mut attributes = vec![
            KeyValue::new("db.system.name", "postgresql"),
            KeyValue::new("db.query.text", statement.text.unwrap_or_else(|| statement.summary.clone())),
        ];
        if let Some(rows) = statement.rows_returned {
            attributes.push(KeyValue::new("db.response.returned_rows", rows as i64));
        }
        let mut span = SpanBuilder::from_name(statement.summary)
            .with_kind(SpanKind::Client)
            .with_start_time(started)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        span.end_with_timestamp(ended);
    }
}

/// The fields of one statement event.
#[derive(Default)]
struct Statement {
    /// Its first words (`SELECT id, email, password_hash …`): the span's name.
    summary: String,
    /// Its whole text, when longer than the summary.
    text: Option<String>,
    elapsed: Duration,
    rows_returned: Option<u64>,
}

impl Visit for Statement {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" if !value.trim().is_empty() => self.text = Some(value.trim().to_owned()),
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" && value.is_finite() && value >= 0.0 {
            self.elapsed = Duration::from_secs_f64(value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "rows_returned" {
            self.rows_returned = Some(value);
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}
