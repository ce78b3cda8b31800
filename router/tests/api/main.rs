//! Router tests: the real router on port 0 in front of real or in-process subgraphs.

mod auth_e2e;
mod binary;
mod dedupe;
mod federation;
mod files_e2e;
mod helpers;
mod http;
mod introspection;
mod journey;
mod limits;
mod operations;
mod outage;
mod ratelimit;
mod resilience;
mod sessions;
mod subgraph_tls;
mod tasks_e2e;
mod uploads;
mod variables;
mod web;
