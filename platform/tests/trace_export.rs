//! A collector that takes connections and never answers must cost requests
//! nothing: spans are queued (a bounded queue, the surplus dropped) and
//! exported from the batch processor's own thread. A test binary of its own:
//! the subscriber is global to the process.

use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_never_answers_stalls_no_request() {
    // Connections are accepted by the kernel's backlog and never read or answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", silent.local_addr().expect("address"));
    let mut env = platform::Env::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("LOG_LEVEL", "off")]);
    let settings = platform::config::TelemetrySettings::from_env(&mut env);
    env.finish().expect("telemetry settings");
    let telemetry = platform::telemetry::init(&settings, "test");
    assert!(platform::telemetry::tracing_enabled());

    // Ten times the queue's 2,048 spans, each a sampled root like a request's.
    let started = Instant::now();
    for _ in 0..20_480 {
        let span = tracing::info_span!("request", otel.kind = "server");
        let _entered = span.enter();
        assert!(platform::telemetry::trace_id(&span).is_some(), "sampled");
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "20,480 spans took {elapsed:?} with the collector silent");
    // Its shutdown would wait out the export timeout; the process ends here anyway.
    std::mem::forget(telemetry);
}
