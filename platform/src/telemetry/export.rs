//! The OpenTelemetry side: the exporter, the batch processor, the sampler
//! and the layer that turns `tracing` spans into OpenTelemetry spans.

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SamplingDecision, SamplingResult, SdkTracer, SdkTracerProvider,
    ShouldSample,
};
use tracing::Level;
use tracing_subscriber::{Layer, Registry, filter};

use crate::config::TraceSettings;

/// Spans posted as OTLP/HTTP protobuf to `settings.endpoint`, in batches from
/// the processor's own thread. Its queue is bounded (`OTEL_BSP_MAX_QUEUE_SIZE`,
/// 2048 spans): when the collector is slow or away, new spans are dropped
/// rather than held. Each export gives up after `OTEL_EXPORTER_OTLP_TIMEOUT`
/// (10 s).
pub(super) fn provider(
    settings: &TraceSettings,
    service: &str,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let headers = settings.headers.iter().map(|(name, value)| (name.clone(), value.expose().to_owned())).collect();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.endpoint.clone())
        .with_headers(headers)
        .build()?;
    // The builder's defaults read the standard OTEL_BSP_* variables.
    let processor =
        BatchSpanProcessor::builder(exporter).with_batch_config(BatchConfigBuilder::default().build()).build();
    let name = settings.service_name.clone().unwrap_or_else(|| service.to_owned());
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(EdgeSampler { root: Sampler::TraceIdRatioBased(settings.sample_ratio) })
        .with_resource(Resource::builder().with_service_name(name).build())
        .build())
}

/// `tracing` spans (at `info` and above) as OpenTelemetry spans, and warnings
/// and errors as events on them (an error also marks its span failed).
pub(super) fn span_layer(tracer: SdkTracer) -> Box<dyn Layer<Registry> + Send + Sync> {
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_filter(filter::filter_fn(|metadata| {
            let most_verbose = if metadata.is_span() { Level::INFO } else { Level::WARN };
            *metadata.level() <= most_verbose
        }))
        .boxed()
}

/// Parent-based sampling in which only a request begins a trace: a span whose
/// parent is sampled is kept, one whose parent is not is dropped, and a span
/// without a parent is kept as `root` decides if it serves a request (kind
/// server) and dropped otherwise. So the router's readiness probes, the
/// relay's polls and an event that came without a trace context make no
/// traces of their own, and a trace is never cut in half.
#[derive(Debug, Clone)]
struct EdgeSampler {
    root: Sampler,
}

impl ShouldSample for EdgeSampler {
    fn should_sample(
        &self,
        parent: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        match parent.filter(|parent| parent.has_active_span()) {
            Some(parent) => {
                let span = parent.span();
                let span_context = span.span_context();
                let decision =
                    if span_context.is_sampled() { SamplingDecision::RecordAndSample } else { SamplingDecision::Drop };
                SamplingResult { decision, attributes: Vec::new(), trace_state: span_context.trace_state().clone() }
            }
            None if *kind == SpanKind::Server => self.root.should_sample(None, trace_id, name, kind, attributes, links),
            None => SamplingResult {
                decision: SamplingDecision::Drop,
                attributes: Vec::new(),
                trace_state: Default::default(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceState};

    use super::*;

    fn decide(sampler: &EdgeSampler, parent: Option<&Context>, kind: SpanKind) -> SamplingDecision {
        sampler.should_sample(parent, TraceId::from(7u128), "span", &kind, &[], &[]).decision
    }

    fn remote(sampled: bool) -> Context {
        let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
        let span = SpanContext::new(TraceId::from(7u128), SpanId::from(9u64), flags, true, TraceState::default());
        Context::new().with_remote_span_context(span)
    }

    #[test]
    fn only_requests_begin_traces_and_children_follow_their_parent() {
        let always = EdgeSampler { root: Sampler::TraceIdRatioBased(1.0) };
        let never = EdgeSampler { root: Sampler::TraceIdRatioBased(0.0) };
        assert_eq!(decide(&always, None, SpanKind::Server), SamplingDecision::RecordAndSample);
        assert_eq!(decide(&never, None, SpanKind::Server), SamplingDecision::Drop);
        for kind in [SpanKind::Client, SpanKind::Consumer, SpanKind::Producer, SpanKind::Internal] {
            assert_eq!(decide(&always, None, kind.clone()), SamplingDecision::Drop, "{kind:?} without a parent");
            assert_eq!(decide(&always, Some(&Context::new()), kind), SamplingDecision::Drop, "an empty context");
        }
        // Whatever the ratio, a child follows its parent.
        assert_eq!(decide(&never, Some(&remote(true)), SpanKind::Consumer), SamplingDecision::RecordAndSample);
        assert_eq!(decide(&always, Some(&remote(false)), SpanKind::Server), SamplingDecision::Drop);
    }
}
