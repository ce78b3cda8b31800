//! Prometheus metrics: one process-wide recorder, rendered at `GET /metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets from 1 ms to 10 s: our requests live in the low milliseconds,
/// which the seed's 100 ms floor could not see.
pub const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";

/// Buckets from 5 µs to 100 ms, for work measured in microseconds.
pub const FINE_LATENCY_BUCKETS: &[f64] =
    &[0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];

/// The router's own time per operation (excluding waits on subgraphs): tens of
/// microseconds, invisible in millisecond buckets.
pub const ROUTER_OVERHEAD: &str = "router_overhead_seconds";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder on first use and returns its handle.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("bucket list is not empty")
            // A full match wins over the suffix.
            .set_buckets_for_metric(Matcher::Full(ROUTER_OVERHEAD.into()), FINE_LATENCY_BUCKETS)
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed (a test harness): then our
        // handle renders an empty registry rather than crashing the service.
        let _ = metrics::set_global_recorder(recorder);
        spawn_upkeep(handle.clone());
        handle
    })
}

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Histogram samples are held one by one until upkeep folds them into buckets,
/// which a scrape also does: without this, a process nobody scrapes (no
/// Prometheus, or a scrape interval far longer than usual) would grow by every
/// sample it records, about 1 MB/s per busy histogram at 25,000 requests/s.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            handle.run_upkeep();
        }
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, "metrics upkeep thread not started: histogram samples are folded only on scrape");
    }
}

/// The full scrape body: application metrics plus process metrics.
pub fn render() -> String {
    let handle = handle();
    handle.run_upkeep();
    let mut body = handle.render();
    body.push_str(&process::render());
    body
}

/// Process metrics read from procfs on each scrape, with the names Prometheus'
/// own client libraries use, so standard dashboards work.
mod process {
    use std::fmt::Write;

    pub fn render() -> String {
        let mut out = String::new();
        if let Some(stats) = read() {
            let _ = writeln!(out, "# HELP process_resident_memory_bytes Resident memory size in bytes.");
            let _ = writeln!(out, "# TYPE process_resident_memory_bytes gauge");
            let _ = writeln!(out, "process_resident_memory_bytes {}", stats.rss_bytes);
            let _ = writeln!(out, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.");
            let _ = writeln!(out, "# TYPE process_cpu_seconds_total counter");
            let _ = writeln!(out, "process_cpu_seconds_total {}", stats.cpu_seconds);
            let _ = writeln!(out, "# HELP process_open_fds Number of open file descriptors.");
            let _ = writeln!(out, "# TYPE process_open_fds gauge");
            let _ = writeln!(out, "process_open_fds {}", stats.open_fds);
        }
        out
    }

    struct Stats {
        rss_bytes: u64,
        cpu_seconds: f64,
        open_fds: usize,
    }

    #[cfg(target_os = "linux")]
    fn read() -> Option<Stats> {
        // Clock ticks per second is 100 on every Linux platform we ship to.
        const TICKS_PER_SECOND: f64 = 100.0;
        const PAGE_SIZE: u64 = 4096;
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the full line, 12 and 13 here (from 0).
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
        Some(Stats { rss_bytes: resident_pages * PAGE_SIZE, cpu_seconds: (utime + stime) / TICKS_PER_SECOND, open_fds })
    }

    #[cfg(not(target_os = "linux"))]
    fn read() -> Option<Stats> {
        None
    }
}
