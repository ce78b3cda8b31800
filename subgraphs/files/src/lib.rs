//! The files subgraph: uploads streamed into object storage (hashed, sized and
//! sniffed on the way), signed downloads with ranges and ETags, and the
//! `user.deleted` cascade, served as an Apollo Federation v2 subgraph.

pub mod cascade;
pub mod config;
pub mod download;
pub mod naming;
pub mod repository;
pub mod s3_http;
pub mod schema;
pub mod signing;
pub mod sniff;
pub mod startup;
pub mod storage;
pub mod upload;

pub use config::Settings;
pub use startup::Application;

/// The Postgres schema this service owns.
pub const SCHEMA: &str = "files";
pub const SERVICE: &str = "files";
