//! The tasks subgraph: each user's tasks, paged by keyset, read through a Redis
//! cache, and removed when the user's account is deleted (`user.deleted`).

pub mod cascade;
pub mod config;
pub mod loaders;
pub mod pages;
pub mod schema;
pub mod service;
pub mod startup;
pub mod store;
pub mod validation;

pub use config::Settings;
pub use startup::Application;

/// The Postgres schema this service owns.
pub const SCHEMA: &str = "tasks";
pub const SERVICE: &str = "tasks";
