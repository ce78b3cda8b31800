//! W3C trace context (`traceparent`, `tracestate`): read from requests and
//! events to make their spans children of the caller's, written into
//! subgraph requests and outbox events to make the next hop a child of ours.
//! Everything here does nothing unless traces are exported.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::tracing_enabled;

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(key.as_bytes()), HeaderValue::from_str(&value)) {
            self.0.insert(name, value);
        }
    }
}

/// Makes a request's `span` a child of the span its `traceparent` names. A
/// request without a usable one begins a trace if `starts_traces` (the
/// router), and is left out of tracing otherwise: its span gets a parent that
/// was not sampled, so nothing below it is kept either. Call before the span
/// is first entered.
pub fn join_request(span: &Span, headers: &HeaderMap, starts_traces: bool) {
    if !tracing_enabled() {
        return;
    }
    let caller = TraceContextPropagator::new().extract(&Headers(headers));
    if caller.span().span_context().is_valid() {
        let _ = span.set_parent(caller);
    } else if !starts_traces {
        let unsampled = SpanContext::new(
            TraceId::from(rand::random::<u128>().max(1)),
            SpanId::from(rand::random::<u64>().max(1)),
            TraceFlags::default(),
            true,
            TraceState::default(),
        );
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(unsampled));
    }
}

/// Makes `span` a child of the span `traceparent` names (an event's, carried
/// with it from the request that caused it); without one, `span` begins no
/// trace of its own (see the sampler). Call before the span is first entered.
pub fn follow_traceparent(span: &Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent.filter(|_| tracing_enabled()) else { return };
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let caller = TraceContextPropagator::new().extract(&carrier);
    if caller.span().span_context().is_valid() {
        let _ = span.set_parent(caller);
    }
}

/// The id of the trace `span` is kept in, for its log lines: `None` when
/// traces are off or this one is not sampled (there is nothing to look up).
pub fn trace_id(span: &Span) -> Option<String> {
    if !tracing_enabled() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_sampled().then(|| span_context.trace_id().to_string())
}

/// `span`'s W3C `traceparent`, to send along to the next hop: `None` when
/// traces are off or `span` is in none.
pub fn traceparent(span: &Span) -> Option<String> {
    if !tracing_enabled() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove("traceparent")
}

/// [`traceparent`] of the span being run.
pub fn current_traceparent() -> Option<String> {
    traceparent(&Span::current())
}

/// Writes `span`'s trace context into `headers` (replacing any a client
/// sent): the next hop's span becomes its child.
pub fn inject(span: &Span, headers: &mut HeaderMap) {
    if tracing_enabled() {
        TraceContextPropagator::new().inject_context(&span.context(), &mut HeadersMut(headers));
    }
}

/// The answer's status on the current request's span (traces only).
pub fn record_http_status(status: u16) {
    if tracing_enabled() {
        Span::current().set_attribute("http.response.status_code", i64::from(status));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_traces_off_nothing_is_read_or_written() {
        let span = tracing::info_span!("request");
        let mut headers = HeaderMap::new();
        let client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert("traceparent", HeaderValue::from_static(client));
        join_request(&span, &headers, true);
        inject(&span, &mut headers);
        assert_eq!(headers["traceparent"], client, "the client's, untouched");
        assert_eq!(trace_id(&span), None);
        assert_eq!(traceparent(&span), None);
    }
}
