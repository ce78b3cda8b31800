//! The platform of the subgraphs: everything of `platform` (settings, HTTP,
//! health, metrics, logs, identity, the shared binary), re-exported, and what
//! only a subgraph needs: its database, the event bus (outbox relay and
//! idempotent consumer), cache-aside, and serving an async-graphql schema with
//! stable error codes.
//!
//! A service's `main` is one call to [`cli::main`]; its `lib.rs` builds an
//! `Application` from typed settings, using the pieces below.

pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod graphql;
pub mod identity;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;

pub use platform::{allocator, cli, fail_open, health, healthcheck, http, metrics, multipart, query_text, telemetry};

pub use config::{ConfigError, Env, Secret};
pub use error::ApiError;
pub use identity::{TokenVerifier, Viewer};
