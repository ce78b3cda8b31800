//! The platform every taskgraph service stands on.
//!
//! A service's `main` is one call to [`cli::main`]; its `lib.rs` builds an
//! `Application` from typed settings, using the pieces below.

pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod fail_open;
pub mod graphql;
pub mod health;
pub mod healthcheck;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod query_text;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;

pub use config::{ConfigError, Env, Secret};
pub use error::ApiError;
pub use identity::{TokenVerifier, Viewer};
