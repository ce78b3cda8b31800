//! Cache-aside in Redis for resolver results, per owner.
//!
//! Keys are `<namespace>:<owner>:g<generation>:<args hash>`. A write bumps the
//! owner's generation (one atomic INCR), so every cached page of that owner goes
//! stale at once without a scan, and the owner's next read misses: no stale read
//! after one's own write. Redis never fails a request: errors and timeouts fall
//! back to the loader, are counted, and after repeated errors Redis is left alone
//! for a cool-down.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::CacheSettings;
use crate::health::{Check, CheckFuture};

/// Consecutive errors after which Redis is skipped for [`COOL_DOWN`].
const ERRORS_BEFORE_COOL_DOWN: u32 = 3;
const COOL_DOWN: Duration = Duration::from_secs(5);

/// Reads the generation and the entry in one round trip.
const READ_SCRIPT: &str = r"
local generation = redis.call('GET', KEYS[1]) or '0'
local value = redis.call('GET', ARGV[1] .. generation .. ':' .. ARGV[2])
return {generation, value}
";

pub struct Cache {
    /// Metric label, e.g. `tasks`.
    name: &'static str,
    /// `CACHE_KEY_PREFIX` + name: the start of every key.
    namespace: String,
    client: Option<redis::Client>,
    connection: tokio::sync::Mutex<Option<ConnectionManager>>,
    settings: CacheSettings,
    script: redis::Script,
    consecutive_errors: AtomicU32,
    resting_until: Mutex<Option<Instant>>,
}

impl Cache {
    /// Never fails: an unusable URL or an absent Redis only means every read misses.
    pub fn new(name: &'static str, settings: CacheSettings) -> Self {
        let client = if settings.enabled { redis::Client::open(settings.url.expose()).ok() } else { None };
        Self {
            name,
            namespace: format!("{}{name}", settings.key_prefix),
            client,
            connection: tokio::sync::Mutex::new(None),
            settings,
            script: redis::Script::new(READ_SCRIPT),
            consecutive_errors: AtomicU32::new(0),
            resting_until: Mutex::new(None),
        }
    }

    fn generation_key(&self, owner: &str) -> String {
        format!("{}:{owner}:generation", self.namespace)
    }

    /// The cached value for (`owner`, `args`), or `load`'s result, which is then cached.
    pub async fn get_or_load<T, E, F, Fut>(&self, owner: &str, args: &str, load: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let prefix = format!("{}:{owner}:g", self.namespace);
        let generation_key = self.generation_key(owner);
        let script = &self.script;
        let prefix_arg = &prefix;
        let read: Option<(String, Option<String>)> = self
            .run(|mut conn| async move {
                script.key(&generation_key).arg(prefix_arg).arg(args).invoke_async(&mut conn).await
            })
            .await;
        let generation = match read {
            Some((generation, Some(cached))) => match serde_json::from_str(&cached) {
                Ok(value) => {
                    metrics::counter!("cache_hits_total", "cache" => self.name).increment(1);
                    return Ok(value);
                }
                Err(_) => Some(generation),
            },
            Some((generation, None)) => Some(generation),
            None => None,
        };
        metrics::counter!("cache_misses_total", "cache" => self.name).increment(1);
        let value = load().await?;
        if let (Some(generation), Ok(json)) = (generation, serde_json::to_string(&value)) {
            let key = format!("{prefix}{generation}:{args}");
            let ttl = self.settings.ttl.as_secs().max(1);
            self.run(|mut conn| async move {
                redis::cmd("SET").arg(&key).arg(json).arg("EX").arg(ttl).query_async::<()>(&mut conn).await
            })
            .await;
        }
        Ok(value)
    }

    /// Makes every cached entry of `owner` stale. Best effort: if Redis is away,
    /// entries written before it left expire by their TTL.
    pub async fn invalidate(&self, owner: &str) {
        let key = self.generation_key(owner);
        self.run(|mut conn| async move { redis::cmd("INCR").arg(&key).query_async::<i64>(&mut conn).await }).await;
    }

    /// Whether a Redis is configured at all (`REDIS_URL=none` turns caching off).
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// Runs one Redis operation under the timeout and the error cool-down.
    async fn run<T, F, Fut>(&self, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.settings.enabled || self.resting() {
            return None;
        }
        let attempt = async {
            let conn = self.connection().await?;
            op(conn).await
        };
        match tokio::time::timeout(self.settings.timeout, attempt).await {
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

    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let mut slot = self.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let client = self
            .client
            .clone()
            .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "bad REDIS_URL")))?;
        let conn = ConnectionManager::new(client).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    fn resting(&self) -> bool {
        let mut until = self.resting_until.lock().expect("cache lock");
        match *until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    fn failed(&self, reason: &str) {
        metrics::counter!("cache_errors_total", "cache" => self.name).increment(1);
        let errors = self.consecutive_errors.fetch_add(1, Ordering::Relaxed) + 1;
        if errors >= ERRORS_BEFORE_COOL_DOWN {
            self.consecutive_errors.store(0, Ordering::Relaxed);
            let mut until = self.resting_until.lock().expect("cache lock");
            // Requests already in flight fail too: one line per cool-down, not one each.
            if until.is_some_and(|t| Instant::now() < t) {
                return;
            }
            *until = Some(Instant::now() + COOL_DOWN);
            tracing::warn!(cache = self.name, %reason, cool_down_secs = COOL_DOWN.as_secs(), "Redis keeps failing; using Postgres only for a while");
        } else {
            tracing::debug!(cache = self.name, %reason, "cache operation failed; falling back");
        }
    }

    /// Whether Redis is being left alone after repeated errors.
    pub fn cooling_down(&self) -> bool {
        self.resting()
    }
}

impl Check for Cache {
    fn name(&self) -> &'static str {
        "redis"
    }

    /// Not required: without Redis every read goes to Postgres.
    fn required(&self) -> bool {
        false
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            let pong = self.run(|mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await });
            match pong.await {
                Some(_) => Ok(()),
                None => Err("unreachable".to_owned()),
            }
        })
    }
}
