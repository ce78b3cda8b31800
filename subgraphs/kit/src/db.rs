//! The service's Postgres pool and its embedded migrations.
//!
//! Each service owns one Postgres schema; its migration history lives in that
//! schema too (`<schema>._sqlx_migrations`), so services sharing a database
//! never see each other's migrations.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::config::DatabaseSettings;

/// Connects, creating the database first when it does not exist yet.
pub async fn connect(settings: &DatabaseSettings, service: &str) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(settings.url.expose())
        .context("DATABASE_URL is not a valid Postgres URL")?
        .application_name(service);
    ensure_database(&options).await?;
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        // A ping per checkout costs a round trip on every query; a broken
        // connection surfaces as an error on use and is replaced.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .context("connecting to Postgres")?;
    report_pool_usage(pool.clone(), service.to_owned());
    Ok(pool)
}

/// How often a pool's usage is sampled for `db_pool_connections`.
const POOL_REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// `db_pool_connections{service,state}` (`in_use`, `idle`) and
/// `db_pool_max_connections{service}`, sampled from the pool's own counts (no
/// query) until the pool is closed.
fn report_pool_usage(pool: PgPool, service: String) {
    crate::metrics::handle();
    let in_use = metrics::gauge!("db_pool_connections", "service" => service.clone(), "state" => "in_use");
    let idle = metrics::gauge!("db_pool_connections", "service" => service.clone(), "state" => "idle");
    metrics::gauge!("db_pool_max_connections", "service" => service)
        .set(f64::from(pool.options().get_max_connections()));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POOL_REPORT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !pool.is_closed() {
            let open = pool.size();
            let idle_now = u32::try_from(pool.num_idle()).unwrap_or(open);
            idle.set(f64::from(idle_now));
            in_use.set(f64::from(open.saturating_sub(idle_now)));
            tokio::select! {
                () = pool.close_event() => break,
                _ = tick.tick() => {}
            }
        }
    });
}

async fn ensure_database(options: &PgConnectOptions) -> anyhow::Result<()> {
    match options.connect().await {
        Ok(conn) => {
            let _ = conn.close().await;
            Ok(())
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {
            let name = options.get_database().unwrap_or("postgres").to_owned();
            create_database(options, &name).await
        }
        Err(e) => Err(anyhow::Error::new(e).context("connecting to Postgres")),
    }
}

async fn create_database(options: &PgConnectOptions, name: &str) -> anyhow::Result<()> {
    let mut admin = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .context("connecting to the maintenance database to create the service database")?;
    let sql = format!("CREATE DATABASE {}", quote_ident(name));
    let outcome = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await;
    let _ = admin.close().await;
    match outcome {
        Ok(_) => {
            tracing::info!(database = name, "created database");
            Ok(())
        }
        // Another replica won the race: fine.
        Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42P04") | Some("23505")) => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("creating database {name}"))),
    }
}

/// Quotes an SQL identifier (database names come from configuration).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Runs the service's migrations, keeping their history in the service's schema.
pub async fn migrate(pool: &PgPool, mut migrator: Migrator, schema: &'static str) -> anyhow::Result<()> {
    migrator.create_schema(schema);
    migrator.dangerous_set_table_name(format!("{schema}._sqlx_migrations"));
    migrator.run(pool).await.with_context(|| format!("running the {schema} migrations"))
}

/// Drops a database, ending its sessions (test clean-up).
pub async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = PgConnectOptions::from_str(admin_url)?.database("postgres").connect().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name))))
        .execute(&mut admin)
        .await?;
    let _ = admin.close().await;
    Ok(())
}

/// The earliest `timestamptz` Postgres holds, 4714-11-24 00:00 UTC BC, in
/// microseconds since the Unix epoch. Its latest (294276 AD) is later than
/// chrono's (262142 AD), so chrono bounds that side.
const POSTGRES_MIN_TIMESTAMP_MICROS: i64 = -210_866_803_200_000_000;

/// The time `micros` after the Unix epoch, if both chrono and Postgres can hold
/// it: keys decoded from client text (cursors) are checked here, so a crafted
/// one is bad input rather than an error from Postgres.
pub fn timestamp_from_micros(micros: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    if micros < POSTGRES_MIN_TIMESTAMP_MICROS {
        return None;
    }
    chrono::DateTime::from_timestamp_micros(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_those_both_chrono_and_postgres_hold() {
        let latest = chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp_micros();
        for held in [POSTGRES_MIN_TIMESTAMP_MICROS, 0, 1_700_000_000_000_000, latest] {
            assert_eq!(timestamp_from_micros(held).map(|t| t.timestamp_micros()), Some(held));
        }
        for beyond in [i64::MIN, POSTGRES_MIN_TIMESTAMP_MICROS - 1, latest + 1, i64::MAX] {
            assert_eq!(timestamp_from_micros(beyond), None, "{beyond}");
        }
    }
}
