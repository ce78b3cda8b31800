//! Cache-aside for resolver results, per owner: in Redis, or in process memory
//! when one process serves everything (the monolith, see [`CacheBackend`]).
//!
//! Keys are `<namespace>:<owner>:g<generation>:<args hash>`. A write bumps the
//! owner's generation (one atomic INCR), so every cached page of that owner goes
//! stale at once without a scan, and the owner's next read misses: no stale read
//! after one's own write. Redis never fails a request: errors and timeouts fall
//! back to the loader, are counted, and after repeated errors Redis is left alone
//! for a cool-down.

use std::future::Future;

use redis::aio::ConnectionManager;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{CacheBackend, CacheSettings};
use crate::fail_open::FailOpenRedis;
use crate::health::{Check, CheckFuture};

mod memory;
pub use memory::MemoryStore;

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
    /// Does nothing unless the backend is Redis.
    redis: FailOpenRedis,
    /// Set with [`CacheBackend::Memory`]: Redis is then never used.
    memory: Option<MemoryStore>,
    settings: CacheSettings,
    script: redis::Script,
}

impl Cache {
    /// Never fails: an unusable URL or an absent Redis only means every read misses.
    pub fn new(name: &'static str, settings: CacheSettings) -> Self {
        let url = matches!(settings.backend, CacheBackend::Redis).then(|| settings.url.expose());
        let redis =
            FailOpenRedis::new(url, settings.timeout, format!("cache {name}"), "using Postgres only", move || {
                metrics::counter!("cache_errors_total", "cache" => name).increment(1)
            });
        let memory = match settings.backend {
            CacheBackend::Memory { max_bytes } => Some(MemoryStore::new(settings.ttl, max_bytes)),
            CacheBackend::Redis | CacheBackend::Off => None,
        };
        Self {
            name,
            namespace: format!("{}{name}", settings.key_prefix),
            redis,
            memory,
            settings,
            script: redis::Script::new(READ_SCRIPT),
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
        if let Some(memory) = &self.memory {
            return self.get_or_load_in_memory(memory, owner, args, load).await;
        }
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

    async fn get_or_load_in_memory<T, E, F, Fut>(
        &self,
        memory: &MemoryStore,
        owner: &str,
        args: &str,
        load: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // Values are kept as JSON, as in Redis: a cached value is a copy, never shared
        // with a caller that might change it, and its size is known for the bound.
        let (generation, cached) = memory.read(owner, args);
        if let Some(value) = cached.and_then(|json| serde_json::from_str(&json).ok()) {
            metrics::counter!("cache_hits_total", "cache" => self.name).increment(1);
            return Ok(value);
        }
        metrics::counter!("cache_misses_total", "cache" => self.name).increment(1);
        let value = load().await?;
        if let Ok(json) = serde_json::to_string(&value) {
            memory.write(owner, generation, args, json);
        }
        Ok(value)
    }

    /// Makes every cached entry of `owner` stale. Best effort: if Redis is away,
    /// entries written before it left expire by their TTL.
    pub async fn invalidate(&self, owner: &str) {
        if let Some(memory) = &self.memory {
            memory.invalidate(owner);
            return;
        }
        let key = self.generation_key(owner);
        self.run(|mut conn| async move { redis::cmd("INCR").arg(&key).query_async::<i64>(&mut conn).await }).await;
    }

    /// Whether anything is cached at all (`REDIS_URL=none` turns caching off in a
    /// standalone service).
    pub fn enabled(&self) -> bool {
        !matches!(self.settings.backend, CacheBackend::Off)
    }

    pub fn backend(&self) -> CacheBackend {
        self.settings.backend
    }

    /// Whether Redis is being left alone after repeated errors.
    pub fn cooling_down(&self) -> bool {
        self.redis.cooling_down()
    }

    async fn run<T, F, Fut>(&self, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.redis.run(op).await
    }
}

impl Check for Cache {
    fn name(&self) -> &'static str {
        if self.memory.is_some() { "memory_cache" } else { "redis" }
    }

    /// Not required: without Redis every read goes to Postgres.
    fn required(&self) -> bool {
        false
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            if self.memory.is_some() {
                return Ok(());
            }
            let pong = self.run(|mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await });
            match pong.await {
                Some(_) => Ok(()),
                None => Err("unreachable".to_owned()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::config::Secret;

    fn in_memory() -> Cache {
        let settings = CacheSettings {
            backend: CacheBackend::Memory { max_bytes: 1 << 20 },
            // Never dialled: the memory backend does not touch Redis.
            url: Secret::new("redis://127.0.0.1:1"),
            ttl: Duration::from_secs(60),
            timeout: Duration::from_millis(100),
            key_prefix: String::new(),
        };
        Cache::new("test", settings)
    }

    async fn load(calls: &AtomicUsize, value: &str) -> Result<Vec<String>, std::convert::Infallible> {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(vec![value.to_owned()])
    }

    #[tokio::test]
    async fn in_memory_a_second_read_is_a_hit_and_a_write_makes_the_owner_s_reads_miss() {
        let cache = in_memory();
        let calls = AtomicUsize::new(0);

        let first = cache.get_or_load("ada", "page-1", || load(&calls, "a")).await.unwrap();
        let second = cache.get_or_load("ada", "page-1", || load(&calls, "b")).await.unwrap();
        assert_eq!((first, second), (vec!["a".to_owned()], vec!["a".to_owned()]));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        cache.invalidate("ada").await;
        let third = cache.get_or_load("ada", "page-1", || load(&calls, "c")).await.unwrap();
        assert_eq!(third, vec!["c".to_owned()]);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn in_memory_the_cache_is_enabled_and_healthy_without_redis() {
        let cache = in_memory();
        assert!(cache.enabled());
        assert_eq!(cache.name(), "memory_cache");
        assert_eq!(cache.check().await, Ok(()));
    }
}
