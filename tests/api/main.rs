//! The monolith end to end: one process on ephemeral ports with a fresh
//! database, through the router, with real brokers and with the in-process ones.

mod admin;
mod cascade;
mod helpers;
mod sessions;
mod startup;
