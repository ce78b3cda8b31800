//! Integration tests: the real tasks service on port 0 against the real
//! Postgres, Redis and RabbitMQ, each test with its own database, exchange,
//! queues and cache keys.

mod binary;
mod cache;
mod cascade;
mod crud;
mod database_outage;
mod deletion;
mod federation;
mod health;
mod helpers;
mod limits;
mod pagination;
mod tokens;
