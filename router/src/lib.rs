//! The taskgraph federation router: one GraphQL endpoint over any Apollo
//! Federation v2 subgraphs. Plans come from `hive-router-query-planner`; the
//! request path (parse → validate → plan → execute → project) is ours.

pub mod config;
mod cors;
pub mod downloads;
pub mod edge;
pub mod frontend;
pub mod graphiql;
pub mod http;
pub mod introspection;
pub mod pipeline;
pub mod readiness;
pub mod startup;
pub mod subgraphs;
pub mod supergraph;

pub use config::Settings;
pub use startup::Application;

pub const SERVICE: &str = "router";
