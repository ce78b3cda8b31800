//! `cargo run --release`: the whole API in one process (see the library).

use std::process::ExitCode;

use taskgraph::{EventsMode, Monolith, Settings};

// Resolvers and the router allocate many small values; mimalloc measured faster than the system allocator.
#[global_allocator]
static GLOBAL: kit::allocator::Allocator = kit::allocator::Allocator;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str);
    let known = matches!(command, None | Some("events")) || (command == Some("healthcheck") && args.len() <= 2);
    if !known {
        eprintln!(
            "usage: taskgraph [healthcheck [live|ready] | events replay-dead-letters|recreate-queue]   \
             (settings come from the environment; unknown arguments {args:?})"
        );
        return ExitCode::from(2);
    }
    let Some(settings) = settings_or_report() else { return ExitCode::from(2) };
    match command {
        Some("healthcheck") => return healthcheck(&settings, args.get(1).map(String::as_str)),
        Some("events") => return events(&settings, &args[1..]),
        _ => {}
    }
    // Kept until the runtime has stopped: dropped last, it exports the spans still queued.
    let _telemetry = kit::telemetry::init(&settings.telemetry, "taskgraph");
    let runtime = match kit::cli::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("taskgraph: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(settings))
}

fn settings_or_report() -> Option<Settings> {
    match Settings::from_process() {
        Ok(settings) => Some(settings),
        Err(e) => {
            for line in &e.0 {
                eprintln!("taskgraph: configuration error: {line}");
            }
            None
        }
    }
}

/// Asks the router of a running process (`HOST`/`PORT`), which is ready once
/// every subgraph of the process answers.
fn healthcheck(settings: &Settings, argument: Option<&str>) -> ExitCode {
    let Some(probe) = kit::healthcheck::Probe::parse(argument) else {
        eprintln!("usage: taskgraph healthcheck [live|ready]   (unknown probe {argument:?})");
        return ExitCode::from(2);
    };
    kit::cli::report_probe("taskgraph", kit::healthcheck::own_address(&settings.router.http), probe)
}

/// The tasks and files queues on RabbitMQ; the in-process bus has none.
fn events(settings: &Settings, args: &[String]) -> ExitCode {
    if settings.events == EventsMode::InProcess {
        eprintln!("taskgraph: RABBITMQ_URL=none: the in-process event bus has no queues to operate");
        return ExitCode::from(2);
    }
    let subscriptions = [
        tasks::cascade::subscription(&settings.tasks.consumer),
        files::cascade::subscription(&settings.files.consumer),
    ];
    kit::events::maintenance::command("taskgraph", args, &settings.tasks.amqp, &subscriptions)
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
    match monolith.run_until_stopped(kit::cli::shutdown_on_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("taskgraph: {e:#}");
            ExitCode::FAILURE
        }
    }
}
