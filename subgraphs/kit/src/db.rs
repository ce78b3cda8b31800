//! The service's Postgres pool and its embedded migrations.
//!
//! Each service owns one Postgres schema; its migration history lives in that
//! schema too (`<schema>._sqlx_migrations`), so services sharing a database
//! never see each other's migrations.
//!
//! The pool is used through [`Database`], which fails at once while Postgres is
//! known to be unreachable, instead of making every request wait out
//! `DATABASE_ACQUIRE_TIMEOUT`. A query that cannot reach Postgres (the pool timed
//! out, a connection was refused or broke: [`is_unreachable`]) starts a probe on
//! a connection of its own, given [`PROBE_TIMEOUT`]. If the probe fails too,
//! Postgres is down: every query and transaction fails at once with an error
//! clients see as `UNAVAILABLE` with `retryAfter`, readiness says `postgres`
//! is down, and the probe is repeated every [`PROBE_INTERVAL`]. Once it gets
//! through, the pool is used again, except the connections opened before the
//! outage, which are dropped rather than handed out broken. A probe that gets
//! through at once (the pool was only busy, or one connection had broken)
//! changes nothing.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt, TryFutureExt, TryStreamExt};
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{ConnectOptions, Connection, Describe, Either, Execute, Executor, Postgres, SqlStr, Transaction};

use crate::config::DatabaseSettings;
use crate::health::{Check, CheckFuture};

/// How long a probe may take to connect before Postgres counts as unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often Postgres is probed while it is unreachable.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Connects, creating the database first when it does not exist yet.
pub async fn connect(settings: &DatabaseSettings, service: &str) -> anyhow::Result<Database> {
    let options = PgConnectOptions::from_str(settings.url.expose())
        .context("DATABASE_URL is not a valid Postgres URL")?
        .application_name(service);
    ensure_database(&options).await?;
    let reachability = Arc::new(Reachability::default());
    let opened_before_outage = reachability.clone();
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        // A ping per checkout costs a round trip on every query; a broken
        // connection surfaces as an error on use and is replaced.
        .test_before_acquire(false)
        // Those that outlived an outage are broken: replaced, not handed out.
        .before_acquire(move |_, meta| {
            let keep = !opened_before_outage.outlived_outage(meta.age);
            Box::pin(async move { Ok(keep) })
        })
        .connect_with(options)
        .await
        .context("connecting to Postgres")?;
    report_pool_usage(pool.clone(), service.to_owned());
    Ok(Database { pool, reachability })
}

/// The service's pool, failing at once while Postgres is known to be
/// unreachable (see the module's documentation). Queries run on `&Database`
/// as on `&PgPool`.
#[derive(Clone, Debug)]
pub struct Database {
    pool: PgPool,
    reachability: Arc<Reachability>,
}

#[derive(Debug, Default)]
struct Reachability {
    /// Set once a probe failed, until one gets through.
    down: AtomicBool,
    /// Whether a probe task runs.
    probing: AtomicBool,
    /// When the last outage was found: connections opened before it are broken.
    outage_found_at: Mutex<Option<Instant>>,
}

impl Reachability {
    fn outlived_outage(&self, age: Duration) -> bool {
        let found_at = *self.outage_found_at.lock().unwrap_or_else(|e| e.into_inner());
        found_at.is_some_and(|found_at| Instant::now().checked_sub(age).is_some_and(|opened| opened < found_at))
    }
}

impl Database {
    /// The pool itself, for what does without failing fast (migrations,
    /// listeners, background loops with their own backoff).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether a probe found Postgres unreachable (and none has got through since).
    pub fn is_down(&self) -> bool {
        self.reachability.down.load(Ordering::Acquire)
    }

    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.usable()?;
        self.pool.begin().await.inspect_err(|e| self.saw(e))
    }

    pub async fn acquire(&self) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        self.usable()?;
        self.pool.acquire().await.inspect_err(|e| self.saw(e))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Fails at once while Postgres is down.
    fn usable(&self) -> Result<(), sqlx::Error> {
        if self.is_down() {
            let reason = "Postgres is unreachable (probed every second until it answers)";
            return Err(sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::NotConnected, reason)));
        }
        Ok(())
    }

    /// Notes an error from the pool: one that says Postgres may be
    /// unreachable starts a probe, unless one runs.
    fn saw(&self, error: &sqlx::Error) {
        if is_unreachable(error) && !matches!(error, sqlx::Error::PoolClosed) {
            self.suspect();
        }
    }

    /// Starts a probe, unless one runs.
    fn suspect(&self) {
        if self.reachability.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.reachability.probing.store(false, Ordering::Release);
            return;
        };
        runtime.spawn(probe_until_reachable(self.clone()));
    }
}

/// Probes until Postgres answers (or the pool is closed), marking it down
/// while it does not.
async fn probe_until_reachable(database: Database) {
    let reachability = &database.reachability;
    while !database.pool.is_closed() {
        match probe(&database.pool).await {
            Ok(()) => {
                if reachability.down.swap(false, Ordering::AcqRel) {
                    tracing::info!("Postgres is reachable again");
                }
                break;
            }
            Err(reason) => {
                if !reachability.down.load(Ordering::Acquire) {
                    *reachability.outage_found_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                    reachability.down.store(true, Ordering::Release);
                    tracing::warn!(%reason, "Postgres is unreachable; requests fail at once until a probe gets through");
                }
            }
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    reachability.probing.store(false, Ordering::Release);
}

/// Connects on a connection of its own (the pool's may all be busy or broken).
async fn probe(pool: &PgPool) -> Result<(), String> {
    let options = pool.connect_options();
    match tokio::time::timeout(PROBE_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no connection within {PROBE_TIMEOUT:?}")),
    }
}

/// Whether `error` says Postgres could not be reached (or is shutting down,
/// or has no connection to spare), rather than that the statement failed:
/// the request may succeed if tried again.
pub fn is_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exceptions; 57P01-03: shutting down or starting;
        // 53300: too many connections.
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|code| code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")),
        _ => false,
    }
}

impl<'d> Executor<'d> for &'_ Database {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'd: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if let Err(e) = self.usable() {
            return futures::stream::once(futures::future::ready(Err(e))).boxed();
        }
        let database = self.clone();
        (&self.pool).fetch_many(query).inspect_err(move |e| database.saw(e)).boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'd: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if let Err(e) = self.usable() {
            return Box::pin(futures::future::ready(Err(e)));
        }
        let database = self.clone();
        Box::pin((&self.pool).fetch_optional(query).inspect_err(move |e| database.saw(e)))
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement, sqlx::Error>>
    where
        'd: 'e,
    {
        if let Err(e) = self.usable() {
            return Box::pin(futures::future::ready(Err(e)));
        }
        let database = self.clone();
        Box::pin((&self.pool).prepare_with(sql, parameters).inspect_err(move |e| database.saw(e)))
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'd: 'e,
    {
        if let Err(e) = self.usable() {
            return Box::pin(futures::future::ready(Err(e)));
        }
        let database = self.clone();
        Box::pin((&self.pool).describe(sql).inspect_err(move |e| database.saw(e)))
    }
}

/// Readiness: answers at once while Postgres is known to be down.
impl Check for Database {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn required(&self) -> bool {
        true
    }

    /// A check that takes longer than a probe may starts one: a Postgres that
    /// stopped answering is found by the next readiness check, not only by
    /// requests waiting out the acquire timeout.
    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            if self.is_down() {
                return Err("unreachable".to_owned());
            }
            match tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(self)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "postgres check");
                    Err("unreachable".to_owned())
                }
                Err(_) => {
                    self.suspect();
                    Err("timed out".to_owned())
                }
            }
        })
    }
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
