//! The whole of a service binary: `SERVICE` runs it, `SERVICE print-schema`
//! prints its federation SDL.

use std::future::Future;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, Env, TelemetrySettings};

/// What a service gives the shared binary.
pub trait Service: Sized + Send + 'static {
    type Settings: Send + 'static;
    const NAME: &'static str;

    /// Reads settings; problems are collected by `env`.
    fn settings(env: &mut Env) -> Self::Settings;
    fn telemetry(settings: &Self::Settings) -> &TelemetrySettings;
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

pub fn main<S: Service>() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("print-schema") => match S::sdl() {
            Some(sdl) => {
                print!("{sdl}");
                return ExitCode::SUCCESS;
            }
            None => {
                eprintln!("{}: has no schema of its own to print", S::NAME);
                return ExitCode::from(2);
            }
        },
        Some(other) => {
            eprintln!("usage: {} [print-schema]   (unknown argument {other:?})", S::NAME);
            return ExitCode::from(2);
        }
    }
    let settings = match load::<S>(Env::from_process()) {
        Ok(settings) => settings,
        Err(e) => {
            for line in &e.0 {
                eprintln!("{}: configuration error: {line}", S::NAME);
            }
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(S::telemetry(&settings));
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
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            crate::http::shutdown_signal().await;
            tracing::info!("shutdown signal received; draining");
            signal.cancel();
        });
        match app.run_until_stopped(shutdown).await {
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
