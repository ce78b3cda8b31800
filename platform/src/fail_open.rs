//! Redis for things a request can do without (a cache, shared rate-limit
//! buckets): every operation runs under a timeout, an error or a slow answer
//! means "do without" rather than failing the request, and after repeated errors
//! Redis is left alone for a cool-down, with one log line per cool-down.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tracing::Instrument;

/// Consecutive errors after which Redis is skipped for [`COOL_DOWN`].
const ERRORS_BEFORE_COOL_DOWN: u32 = 3;
const COOL_DOWN: Duration = Duration::from_secs(5);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(250);

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
    /// Set by a failure, cleared once [`FailOpenRedis::recovering`] has seen a
    /// success old enough: read without the lock on every operation.
    unsettled: AtomicBool,
    /// Since a failure: when the first operation after it succeeded, if one has.
    answered_again_at: Mutex<Option<Instant>>,
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
            unsettled: AtomicBool::new(false),
            answered_again_at: Mutex::new(None),
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
        self.attempt(op).await
    }

    /// [`FailOpenRedis::run`] even while Redis is being left alone: for the
    /// one caller that must learn as soon as Redis is back (the cache's retry
    /// of invalidations Redis did not take). A success ends the cool-down.
    pub async fn run_despite_cool_down<T, F, Fut>(&self, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.client.as_ref()?;
        let value = self.attempt(op).await?;
        *self.resting_until.lock().expect("fail-open lock") = None;
        Some(value)
    }

    /// Whether there is a Redis to ask at all (the URL was usable).
    pub fn configured(&self) -> bool {
        self.client.is_some()
    }

    async fn attempt<T, F, Fut>(&self, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            let conn = self.connection().await?;
            op(conn).await
        };
        // One place for every Redis call (cache reads and writes, rate-limit buckets).
        let span = tracing::info_span!(
            target: crate::telemetry::TRACE_ONLY,
            "redis",
            otel.kind = "client",
            otel.name = %format_args!("redis {}", self.purpose),
            db.system.name = "redis",
            otel.status_code = tracing::field::Empty,
        );
        let outcome = tokio::time::timeout(self.timeout, attempt).instrument(span.clone()).await;
        if !matches!(outcome, Ok(Ok(_))) {
            span.record("otel.status_code", "error");
        }
        match outcome {
            Ok(Ok(value)) => {
                self.consecutive_errors.store(0, Ordering::Relaxed);
                if self.unsettled.load(Ordering::Acquire) {
                    self.answered_again_at.lock().expect("fail-open lock").get_or_insert_with(Instant::now);
                }
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
        // Reconnection attempts at most RECONNECT_MAX_DELAY apart (the default
        // grows to 3.2 s), so a Redis that is back is used again at once.
        let config = ConnectionManagerConfig::new().set_max_delay(RECONNECT_MAX_DELAY);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Whether an operation failed and Redis has not answered again for at
    /// least `settle` since: still failing, or back for less than that.
    pub fn recovering(&self, settle: Duration) -> bool {
        if !self.unsettled.load(Ordering::Acquire) {
            return false;
        }
        let mut answered_again_at = self.answered_again_at.lock().expect("fail-open lock");
        match *answered_again_at {
            Some(at) if at.elapsed() >= settle => {
                *answered_again_at = None;
                self.unsettled.store(false, Ordering::Release);
                false
            }
            _ => true,
        }
    }

    fn failed(&self, reason: &str) {
        (self.on_error)();
        *self.answered_again_at.lock().expect("fail-open lock") = None;
        self.unsettled.store(true, Ordering::Release);
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
