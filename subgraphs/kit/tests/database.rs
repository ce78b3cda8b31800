//! `kit::db::Database` against the real Postgres behind a TCP gate.

use std::time::{Duration, Instant};

use kit::config::{DatabaseSettings, Secret};
use kit::error::Code;
use kit::health::Check;
use kit::testing::{Isolation, TcpGate, eventually, postgres_addr};
use kit::{ApiError, db};

#[tokio::test]
async fn a_database_that_stops_answering_fails_queries_at_once_until_it_answers_again() {
    let isolation = Isolation::new("kit_db");
    let gate = TcpGate::start(postgres_addr(), true).await;
    let settings = DatabaseSettings {
        url: Secret::new(gate.url_for(&isolation.database_url())),
        max_connections: 4,
        acquire_timeout: Duration::from_secs(5),
    };
    let database = db::connect(&settings, "kit-test").await.expect("connects through the gate");
    let one = || async { sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&database).await };
    assert_eq!(one().await.unwrap(), 1);

    gate.stall();
    assert!(one().await.is_err(), "the pooled connection was cut");
    eventually("a probe to find Postgres down", || async { database.is_down() }).await;
    for _ in 0..5 {
        let started = Instant::now();
        let error = one().await.unwrap_err();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "failed in {took:?}, not at once");
        assert!(db::is_unreachable(&error), "{error}");
        assert_eq!(ApiError::from(error).code(), Code::Unavailable);
    }
    assert!(database.begin().await.is_err(), "transactions too");
    assert_eq!(database.check().await, Err("unreachable".to_owned()), "readiness says so at once");

    gate.open();
    eventually("a query to succeed again", || async { one().await.is_ok() }).await;
    for _ in 0..10 {
        assert_eq!(one().await.unwrap(), 1, "no connection from before the outage is handed out");
    }
    assert!(!database.is_down());
    assert_eq!(database.check().await, Ok(()));
}
