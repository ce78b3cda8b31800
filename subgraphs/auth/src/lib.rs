//! The auth subgraph: accounts, passwords, EdDSA access tokens and rotating
//! refresh tokens, served as an Apollo Federation v2 subgraph.

pub mod accounts;
pub mod config;
pub mod keys;
pub mod passwords;
pub mod revocations;
pub mod schema;
pub mod startup;
pub mod tokens;
pub mod validation;

pub use config::Settings;
pub use startup::Application;

/// The Postgres schema this service owns.
pub const SCHEMA: &str = "auth";
pub const SERVICE: &str = "auth";
