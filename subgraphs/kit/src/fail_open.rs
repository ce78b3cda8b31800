//! Redis for things a request can do without (a cache, shared rate-limit
//! buckets): every operation runs under a timeout, an error or a slow answer
//! means "do without" rather than failing the request, and after repeated errors
//! Redis is left alone for a cool-down, with one log line per cool-down.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

/// Consecutive errors after which Redis is skipped for [`COOL_DOWN`].
const ERRORS_BEFORE_COOL_DOWN: u32 = 3;
const COOL_DOWN: Duration = Duration::from_secs(5);

pub struct FailOpenRedis {
    /// `None` when the URL is unusable: every operation then does without.
    client: Option<redis::Client>,
    connection: tokio::sync::Mutex<Option<ConnectionManager>>,
    timeout: Duration,
    /// For logs: what Redis is used for here, e.g. `cache tasks`.
    purpose: String,
    /// For logs: what happens meanwhile, e.g. `using Postgres only`.
    fallback: &'static str,
    /// Counts each failed operation (the caller's metric).
    on_error: Box<dyn Fn() + Send + Sync>,
    consecutive_errors: AtomicU32,
    resting_until: Mutex<Option<Instant>>,
}

impl FailOpenRedis {
    pub fn new(
        url: Option<&str>,
        timeout: Duration,
        purpose: impl Into<String>,
        fallback: &'static str,
        on_error: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        let purpose = purpose.into();
        let client = url.and_then(|url| match redis::Client::open(url) {
            Ok(client) => Some(client),
            Err(e) => {
                tracing::error!(purpose = %purpose, error = %e, "unusable Redis URL; {fallback}");
                None
            }
        });
        Self {
            client,
            connection: tokio::sync::Mutex::new(None),
            timeout,
            purpose,
            fallback,
            on_error: Box::new(on_error),
            consecutive_errors: AtomicU32::new(0),
            resting_until: Mutex::new(None),
        }
    }

    /// Runs one Redis operation; `None` means do without.
    pub async fn run<T, F, Fut>(&self, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if self.client.is_none() || self.cooling_down() {
            return None;
        }
        let attempt = async {
            let conn = self.connection().await?;
            op(conn).await
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(value)) => {
                self.consecutive_errors.store(0, Ordering::Relaxed);
                Some(value)
            }
            Ok(Err(e)) => {
                self.failed(&e.to_string());
                None
            }
            Err(_) => {
                self.failed("timed out");
                None
            }
        }
    }

    /// Whether Redis is being left alone after repeated errors.
    pub fn cooling_down(&self) -> bool {
        let mut until = self.resting_until.lock().expect("fail-open lock");
        match *until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let mut slot = self.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let client = self
            .client
            .clone()
            .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "unusable Redis URL")))?;
        let conn = ConnectionManager::new(client).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    fn failed(&self, reason: &str) {
        (self.on_error)();
        let errors = self.consecutive_errors.fetch_add(1, Ordering::Relaxed) + 1;
        if errors < ERRORS_BEFORE_COOL_DOWN {
            tracing::debug!(purpose = %self.purpose, %reason, "Redis operation failed; {}", self.fallback);
            return;
        }
        self.consecutive_errors.store(0, Ordering::Relaxed);
        let mut until = self.resting_until.lock().expect("fail-open lock");
        // Requests already in flight fail too: one line per cool-down, not one each.
        if until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        *until = Some(Instant::now() + COOL_DOWN);
        tracing::warn!(
            purpose = %self.purpose,
            %reason,
            cool_down_secs = COOL_DOWN.as_secs(),
            "Redis keeps failing; {} for a while",
            self.fallback
        );
    }
}
