//! `cargo run --release`: the whole API in one process (see the library).

use std::process::ExitCode;

use taskgraph::{Monolith, Settings};
use tokio_util::sync::CancellationToken;

// Resolvers and the router allocate many small values; mimalloc measured faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    if let Some(argument) = std::env::args().nth(1) {
        eprintln!("usage: taskgraph   (no arguments; settings come from the environment, unknown {argument:?})");
        return ExitCode::from(2);
    }
    let settings = match Settings::from_process() {
        Ok(settings) => settings,
        Err(e) => {
            for line in &e.0 {
                eprintln!("taskgraph: configuration error: {line}");
            }
            return ExitCode::from(2);
        }
    };
    kit::telemetry::init(&settings.telemetry);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("taskgraph: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(settings))
}

async fn run(settings: Settings) -> ExitCode {
    let monolith = match Monolith::build(settings).await {
        Ok(monolith) => monolith,
        Err(e) => {
            // One line, no backtrace: it says what is missing and how to fix it.
            eprintln!("taskgraph: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A blank line sets the addresses apart from the start-up log lines above them.
    println!("\n{}", monolith.banner());
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        kit::http::shutdown_signal().await;
        tracing::info!("shutdown signal received; draining");
        signal.cancel();
    });
    match monolith.run_until_stopped(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("taskgraph: {e:#}");
            ExitCode::FAILURE
        }
    }
}
