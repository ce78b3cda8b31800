//! The whole of a service binary: `SERVICE` runs it, `SERVICE print-schema`
//! prints its federation SDL, `SERVICE healthcheck [live|ready]` asks a running
//! one whether it is healthy (exit 0 or 1; for images without a shell or curl),
//! and `SERVICE events replay-dead-letters | recreate-queue` operates the queues
//! it consumes.

use std::future::Future;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, Env, HttpSettings, TelemetrySettings};
use crate::healthcheck::{self, Probe};

/// What a service gives the shared binary.
pub trait Service: Sized + Send + 'static {
    type Settings: Send + 'static;
    const NAME: &'static str;

    /// Reads settings; problems are collected by `env`.
    fn settings(env: &mut Env) -> Self::Settings;
    fn telemetry(settings: &Self::Settings) -> &TelemetrySettings;
    /// Where the service listens (`SERVICE healthcheck` asks there).
    fn http(settings: &Self::Settings) -> &HttpSettings;
    /// `SERVICE events <args>`: operates the queues the service consumes (kit's
    /// `events::maintenance::command`); `None` (the default): it consumes none,
    /// and the command says so.
    fn events_command(_settings: &Self::Settings, _args: &[String]) -> Option<ExitCode> {
        None
    }
    /// The federation SDL the service serves (`None`: it serves no SDL of its own).
    fn sdl() -> Option<String>;
    fn build(settings: Self::Settings) -> impl Future<Output = anyhow::Result<Self>> + Send;
    fn run_until_stopped(self, shutdown: CancellationToken) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Reads the settings a service would start with, failing with every problem.
pub fn load<S: Service>(mut env: Env) -> Result<S::Settings, ConfigError> {
    let settings = S::settings(&mut env);
    env.finish().map(|()| settings)
}

/// `SERVICE [print-schema | healthcheck [live|ready] | events <command>]`.
pub fn main<S: Service>() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("print-schema") if args.len() == 1 => return print_schema::<S>(),
        Some("healthcheck") if args.len() <= 2 => return healthcheck::<S>(args.get(1).map(String::as_str)),
        Some("events") => return events::<S>(&args[1..]),
        Some(_) => {
            eprintln!("{}", usage::<S>(&args));
            return ExitCode::from(2);
        }
    }
    let Some(settings) = settings_or_report::<S>() else { return ExitCode::from(2) };
    // Kept until the runtime has stopped: dropped last, it exports the spans still queued.
    let _telemetry = crate::telemetry::init(S::telemetry(&settings), S::NAME);
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: cannot start the async runtime: {e}", S::NAME);
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let app = match S::build(settings).await {
            Ok(app) => app,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "{} failed to start", S::NAME);
                return ExitCode::FAILURE;
            }
        };
        match app.run_until_stopped(shutdown_on_signal()).await {
            Ok(()) => {
                tracing::info!("{} stopped", S::NAME);
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "{} stopped with an error", S::NAME);
                ExitCode::FAILURE
            }
        }
    })
}

fn usage<S: Service>(args: &[String]) -> String {
    format!(
        "usage: {} [print-schema | healthcheck [live|ready] | events replay-dead-letters|recreate-queue]   \
         (unknown arguments {args:?})",
        S::NAME
    )
}

/// The settings from the process environment, or every problem printed.
fn settings_or_report<S: Service>() -> Option<S::Settings> {
    match load::<S>(Env::from_process()) {
        Ok(settings) => Some(settings),
        Err(e) => {
            for line in &e.0 {
                eprintln!("{}: configuration error: {line}", S::NAME);
            }
            None
        }
    }
}

fn print_schema<S: Service>() -> ExitCode {
    match S::sdl() {
        Some(sdl) => {
            print!("{sdl}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("{}: has no schema of its own to print", S::NAME);
            ExitCode::from(2)
        }
    }
}

/// Asks the running service at its `HOST`/`PORT` (loopback for a wildcard
/// host): 0 for a 200, 1 for anything else, 2 for a usage or configuration error.
fn healthcheck<S: Service>(argument: Option<&str>) -> ExitCode {
    let Some(probe) = Probe::parse(argument) else {
        eprintln!("usage: {} healthcheck [live|ready]   (unknown probe {argument:?})", S::NAME);
        return ExitCode::from(2);
    };
    let Some(settings) = settings_or_report::<S>() else { return ExitCode::from(2) };
    report_probe(S::NAME, healthcheck::own_address(S::http(&settings)), probe)
}

/// Prints the outcome of one probe (the body of a pass, the reason of a fail),
/// which Docker keeps as the health log.
pub fn report_probe(service: &str, address: std::net::SocketAddr, probe: Probe) -> ExitCode {
    match healthcheck::check(address, probe, healthcheck::TIMEOUT) {
        Ok(body) => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{service}: unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn events<S: Service>(args: &[String]) -> ExitCode {
    let Some(settings) = settings_or_report::<S>() else { return ExitCode::from(2) };
    S::events_command(&settings, args).unwrap_or_else(|| {
        eprintln!("{}: consumes no events, so has no queues to operate", S::NAME);
        ExitCode::from(2)
    })
}

/// A token cancelled when the process is told to stop (ctrl-c or SIGTERM);
/// call it on the runtime.
pub fn shutdown_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        crate::http::shutdown_signal().await;
        tracing::info!("shutdown signal received; draining");
        signal.cancel();
    });
    shutdown
}

/// The async runtime a service runs on: Tokio's multi-threaded scheduler, with
/// `TOKIO_WORKER_THREADS` workers (default: one per CPU); with exactly one
/// asked for, the single-threaded scheduler, which skips the work-stealing
/// machinery that has nobody to steal from.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let one_thread = std::env::var("TOKIO_WORKER_THREADS").is_ok_and(|n| n.trim() == "1");
    let mut builder = if one_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build()
}
