//! Helpers for integration tests of the subgraphs (feature `testing`): where
//! Postgres and RabbitMQ are, a per-test database and exchange that clean up
//! after themselves, readers of queue depths and of a user's rows, beside every
//! helper of `platform::testing`.

use std::net::SocketAddr;
use std::time::Duration;

pub use platform::testing::*;
use uuid::Uuid;

pub fn postgres_base() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn amqp_url() -> String {
    std::env::var("TEST_RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Where Postgres listens, for a [`TcpGate`] in front of it.
pub fn postgres_addr() -> SocketAddr {
    socket_address(&postgres_base())
}

/// Names unique to one test: a database, an exchange, queues and a cache key
/// prefix. All of them are removed when this is dropped (the database is
/// created by the service under test).
pub struct Isolation {
    pub database: String,
    pub exchange: String,
    /// Put before every Redis key of the test (`CACHE_KEY_PREFIX`).
    pub cache_prefix: String,
    id: String,
    queues: std::sync::Mutex<Vec<String>>,
}

impl Isolation {
    pub fn new(prefix: &str) -> Self {
        let id = Uuid::new_v4().simple().to_string();
        Self {
            database: format!("test_{prefix}_{id}"),
            exchange: format!("test.events.{id}"),
            cache_prefix: format!("test-{id}:"),
            id,
            queues: Default::default(),
        }
    }

    pub fn database_url(&self) -> String {
        format!("{}/{}", postgres_base(), self.database)
    }

    /// A pool on this isolation's database (created now, dropped with the
    /// isolation), after running `setup` (the test's own tables).
    pub async fn pool(&self, service: &str, setup: &[&str]) -> sqlx::PgPool {
        let settings = crate::config::DatabaseSettings {
            url: crate::config::Secret::new(self.database_url()),
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
        };
        let pool = crate::db::connect(&settings, service).await.expect("test database").pool().clone();
        for sql in setup {
            sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(&pool).await.expect("test setup SQL");
        }
        pool
    }

    /// A queue name for `base` (e.g. `tasks.user-deleted`), deleted with its
    /// dead-letter queue and exchange afterwards.
    pub fn queue(&self, base: &str) -> String {
        let name = format!("test.{base}.{}", self.id);
        self.queues.lock().expect("queue list").push(name.clone());
        name
    }
}

impl Drop for Isolation {
    fn drop(&mut self) {
        let database = self.database.clone();
        let exchange = self.exchange.clone();
        let pattern = format!("{}*", self.cache_prefix);
        let queues = std::mem::take(&mut *self.queues.lock().unwrap_or_else(|e| e.into_inner()));
        // Clean-up needs async I/O while the test's runtime winds down: use a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            delete_keys(&pattern);
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Err(e) = crate::db::drop_database(&postgres_base(), &database).await {
                    eprintln!("could not drop test database {database}: {e}");
                }
                if let Ok(conn) = crate::events::connect(&amqp_url(), "test-cleanup").await {
                    if let Ok(channel) = conn.create_channel().await {
                        for queue in queues {
                            delete_queue(&channel, &queue).await;
                        }
                        let _ = crate::events::delete_exchange(&channel, &exchange).await;
                        let _ = channel.close(200, "bye".into()).await;
                    }
                    let _ = conn.close(200, "bye".into()).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

async fn delete_queue(channel: &lapin::Channel, queue: &str) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let dead = format!("{queue}.dead");
    let _ = channel.queue_delete(queue.to_owned().into(), QueueDeleteOptions::default()).await;
    let _ = channel.queue_delete(dead.clone().into(), QueueDeleteOptions::default()).await;
    let _ = channel.exchange_delete(dead.into(), ExchangeDeleteOptions::default()).await;
}

fn delete_keys(pattern: &str) {
    let Ok(client) = redis::Client::open(redis_url()) else { return };
    let Ok(mut conn) = client.get_connection() else { return };
    let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut conn).unwrap_or_default();
    if !keys.is_empty() {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
    }
}

/// Waits until `queue` exists with a consumer on it (so it is bound, and an
/// event published now reaches it).
pub async fn wait_for_consumer(queue: &str) {
    wait_for_consumers(queue, |n| n > 0).await
}

/// Waits until `queue` exists and its number of consumers satisfies `wanted`.
pub async fn wait_for_consumers(queue: &str, wanted: impl Fn(u32) -> bool) {
    let conn = crate::events::connect(&amqp_url(), "test-probe").await.expect("RabbitMQ is up");
    wait_for("the queue's consumers", || {
        let conn = &conn;
        let wanted = &wanted;
        async move {
            // A failed passive declare closes its channel: probe on a fresh one.
            let probe = conn.create_channel().await.ok()?;
            let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
            let found = probe.queue_declare(queue.to_owned().into(), passive, Default::default()).await.ok();
            let _ = probe.close(200, "probe".into()).await;
            found.filter(|q| wanted(q.consumer_count()))
        }
    })
    .await;
    let _ = conn.close(200, "bye".into()).await;
}

/// Every `table.column` of `schema` that holds `user` in some row, with the
/// count, searching each uuid column of each table (found through
/// information_schema, so a table added later cannot escape the check) except
/// the tombstones, whose one job is to keep the id. Panics if it finds no
/// column to search at all.
pub async fn rows_of_user(pool: &sqlx::PgPool, schema: &str, user: Uuid) -> Vec<String> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text
         FROM information_schema.columns c
         JOIN information_schema.tables t USING (table_schema, table_name)
         WHERE c.table_schema = $1 AND c.data_type = 'uuid' AND t.table_type = 'BASE TABLE'
           AND c.table_name <> 'deleted_users'",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("list the schema's uuid columns");
    assert!(!columns.is_empty(), "no uuid column in schema {schema}");
    let mut found = Vec::new();
    for (table, column) in columns {
        let sql = format!(
            "SELECT count(*) FROM {}.{} WHERE {} = $1",
            crate::db::quote_ident(schema),
            crate::db::quote_ident(&table),
            crate::db::quote_ident(&column)
        );
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(user).fetch_one(pool).await.expect("count");
        if n > 0 {
            found.push(format!("{table}.{column}: {n}"));
        }
    }
    found
}

/// Messages ready in `queue`, `None` if it does not exist.
pub async fn queue_depth(queue: &str) -> Option<u32> {
    let conn = crate::events::connect(&amqp_url(), "test-probe").await.expect("RabbitMQ is up");
    let probe = conn.create_channel().await.expect("a channel");
    let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
    let found = probe.queue_declare(queue.to_owned().into(), passive, Default::default()).await.ok();
    let _ = probe.close(200, "probe".into()).await;
    let _ = conn.close(200, "bye".into()).await;
    found.map(|q| q.message_count())
}
