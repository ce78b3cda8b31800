//! What every taskgraph service stands on, the router and the subgraphs alike:
//! typed settings, the HTTP server, health, metrics, logs, token verification,
//! fail-open Redis, the shared binary (`cli`) and the global allocator. Nothing
//! here touches a database, the broker or a GraphQL engine: those are the
//! subgraphs' (`kit`).
//!
//! A service's `main` is one call to [`cli::main`]; its `lib.rs` builds an
//! `Application` from typed settings, using the pieces below.

pub mod allocator;
pub mod cli;
pub mod config;
pub mod fail_open;
pub mod health;
pub mod healthcheck;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod multipart;
pub mod query_text;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{ConfigError, Env, Secret};
pub use identity::{TokenVerifier, Viewer};
