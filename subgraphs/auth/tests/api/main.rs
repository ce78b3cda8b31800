//! Integration tests: each spawns the real auth service on port 0 with a fresh
//! database and its own RabbitMQ exchange, and talks to it over HTTP.

mod account;
mod federation;
mod health;
mod helpers;
mod limits;
mod login;
mod outbox;
mod passwords;
mod register;
mod sessions;
mod tokens;
