//! Integration tests: each spawns the real files service on port 0 with a fresh
//! database, its own RabbitMQ exchange and queue, a temporary storage directory
//! and a JWKS issuer of its own, and talks to it over HTTP.

mod binary;
mod cascade;
mod deletion;
mod download;
mod federation;
mod health;
mod helpers;
mod limits;
mod listing;
mod quota;
mod sweep;
mod upload;
