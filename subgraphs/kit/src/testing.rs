//! Helpers for integration tests against the real services (feature `testing`):
//! where they are, a per-test database and exchange that clean up after
//! themselves, awaiting a condition instead of sleeping, and a TCP gate that
//! plays an outage of one dependency without touching the shared service.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

pub fn postgres_base() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn amqp_url() -> String {
    std::env::var("TEST_RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A database name and an exchange name unique to one test; both are removed
/// when this is dropped (the database is created by the service under test).
pub struct Isolation {
    pub database: String,
    pub exchange: String,
}

impl Isolation {
    pub fn new(prefix: &str) -> Self {
        let id = Uuid::new_v4().simple();
        Self { database: format!("test_{prefix}_{id}"), exchange: format!("test.events.{id}") }
    }

    pub fn database_url(&self) -> String {
        format!("{}/{}", postgres_base(), self.database)
    }
}

impl Drop for Isolation {
    fn drop(&mut self) {
        let database = self.database.clone();
        let exchange = self.exchange.clone();
        // Clean-up needs async I/O while the test's runtime winds down: use a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Err(e) = crate::db::drop_database(&postgres_base(), &database).await {
                    eprintln!("could not drop test database {database}: {e}");
                }
                if let Ok(conn) = crate::events::connect(&amqp_url(), "test-cleanup").await {
                    if let Ok(channel) = conn.create_channel().await {
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

/// Waits until `attempt` yields a value, trying every 25 ms for at most 15 s.
pub async fn wait_for<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until `condition` holds (see [`wait_for`]).
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(what, || {
        let check = condition();
        async move { check.await.then_some(()) }
    })
    .await
}

/// A TCP proxy to a real server that refuses connections until opened.
pub struct TcpGate {
    pub port: u16,
    open: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpGate {
    pub async fn start(target: SocketAddr, open: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gate");
        let port = listener.local_addr().expect("addr").port();
        let flag = Arc::new(AtomicBool::new(open));
        let state = flag.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !state.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { port, open: flag, task }
    }

    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}
