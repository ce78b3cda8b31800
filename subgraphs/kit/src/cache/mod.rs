//! Cache-aside for resolver results, per owner: in Redis, or in process memory
//! when one process serves everything (the monolith, see [`CacheBackend`]).
//!
//! Keys are `<namespace>:<owner>:g<epoch>.<generation>:<args hash>`. A write
//! gives the owner a new generation (one atomic SET), so every cached page of
//! that owner goes stale at once without a scan, and the owner's next read
//! misses: no stale read after one's own write. The epoch is the namespace's
//! (`<namespace>:epoch`), read with the generation in the same round trip; a new
//! one makes every entry stale at once. Redis never fails a request: errors and
//! timeouts fall back to the loader, are counted, and after repeated errors
//! Redis is left alone for a cool-down.
//!
//! A write whose invalidation Redis does not take (an outage) must not let an
//! older entry be served once Redis is back. The replica that made the write
//! remembers the owner ([`pending`]): it answers that owner from the loader,
//! caching nothing, and retries every 250 ms, despite the cool-down, until Redis
//! has given the owner a new generation (or, past 10,000 owners, the namespace
//! a new epoch). Every replica reads the generation on every request, so each
//! sees the repair on its next read; and a replica that saw Redis fail trusts
//! no entry for 1 s after Redis answers it again, so that when Redis itself was
//! down, the other replicas' repairs land before it reads an entry. What is
//! left, and bounded by `CACHE_TTL` (the only bound short of asking Postgres on
//! every read): a replica that reaches Redis while the writing one cannot (a
//! partition, not an outage of Redis) reads the older entries until the
//! writing one reaches Redis too; one that saw no failure (no traffic during
//! the outage) may read them in the 250 ms or so before the repair lands; and
//! if the writing replica stops before its repair lands, nothing repairs it.
//!
//! Each replica also keeps its own copy of the entries it reads ([`LocalTier`],
//! `CACHE_LOCAL_MAX_BYTES`). The generation still comes from Redis on every
//! read, so a write on any replica is seen by the next read on every replica;
//! only the entry itself, which never changes under its key, is held locally.
//!
//! No tier keeps a value over `CACHE_MAX_ENTRY_BYTES`: it is answered, not
//! cached, and counted in `cache_skipped_total{cache,reason="too_large"}`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::ConnectionManager;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{CacheBackend, CacheSettings};
use crate::fail_open::FailOpenRedis;
use crate::health::{Check, CheckFuture};

mod memory;
mod pending;
pub use memory::{LocalTier, MemoryStore};
use pending::PendingInvalidations;

/// Lua that sets `generation` to `<epoch>.<generation>`: the namespace's epoch
/// (key 2) and the owner's generation (key 1), giving either `ARGV[$fresh]` if
/// it has none yet, for `ARGV[$ttl]` seconds: the one place that rule is
/// written. The epoch's TTL is renewed when half of it is gone, so it does not
/// make every entry miss once a day.
macro_rules! generation_lua {
    ($fresh:literal, $ttl:literal) => {
        concat!(
            "local generation = redis.call('GET', KEYS[1])\n",
            "if not generation then\n",
            "  generation = ARGV[",
            $fresh,
            "]\n",
            "  redis.call('SET', KEYS[1], generation, 'EX', ARGV[",
            $ttl,
            "])\n",
            "end\n",
            "local epoch = redis.call('GET', KEYS[2])\n",
            "if not epoch then\n",
            "  epoch = ARGV[",
            $fresh,
            "]\n",
            "  redis.call('SET', KEYS[2], epoch, 'EX', ARGV[",
            $ttl,
            "])\n",
            "elseif redis.call('TTL', KEYS[2]) < tonumber(ARGV[",
            $ttl,
            "]) / 2 then\n",
            "  redis.call('EXPIRE', KEYS[2], ARGV[",
            $ttl,
            "])\n",
            "end\n",
            "generation = epoch .. '.' .. generation\n"
        )
    };
}

/// How long a generation lives in Redis: at least as long as any entry
/// (`CACHE_TTL` is at most a day). It expires so that every key the cache
/// writes has a TTL (Redis under `volatile-lru` can evict it); one that
/// expires or is evicted is replaced by a fresh random one, which costs the
/// owner's entries a miss, never a stale read.
const GENERATION_TTL_SECS: u64 = 24 * 3600;

/// An owner's `<epoch>.<generation>`, either created if missing.
const GENERATION_SCRIPT: &str = concat!(generation_lua!(1, 2), "return generation\n");

/// How long after Redis answers again (following a failure) this replica
/// trusts no entry: long enough for another replica's repair of invalidations
/// Redis did not take to land (it is tried every 250 ms).
const SETTLE: Duration = Duration::from_secs(1);

/// An entry and the milliseconds it has left.
const ENTRY_SCRIPT: &str = r"
local value = redis.call('GET', KEYS[1])
if not value then return {false, false} end
return {value, redis.call('PTTL', KEYS[1])}
";

/// Without a local tier: the generation (created if need be) and the entry in
/// one round trip.
const READ_SCRIPT: &str = concat!(
    generation_lua!(3, 4),
    "local value = redis.call('GET', ARGV[1] .. generation .. ':' .. ARGV[2])\n",
    "return {generation, value}\n"
);

pub struct Cache {
    /// Metric label, e.g. `tasks`.
    name: &'static str,
    /// `CACHE_KEY_PREFIX` + name: the start of every key.
    namespace: String,
    /// Does nothing unless the backend is Redis.
    redis: Arc<FailOpenRedis>,
    /// Owners whose last invalidation Redis did not take.
    pending: Arc<PendingInvalidations>,
    /// Set with [`CacheBackend::Memory`]: Redis is then never used.
    memory: Option<MemoryStore>,
    /// With Redis: this replica's copies of entries (`None` when
    /// `CACHE_LOCAL_MAX_BYTES` is 0).
    local: Option<LocalTier>,
    settings: CacheSettings,
    generation_script: redis::Script,
    entry_script: redis::Script,
    read_script: redis::Script,
}

/// What a read found: the owner's generation (`None` when Redis could not
/// tell) and the entry, if any.
struct Read {
    generation: Option<String>,
    value: Option<Bytes>,
}

impl Cache {
    /// Never fails: an unusable URL or an absent Redis only means every read misses.
    pub fn new(name: &'static str, settings: CacheSettings) -> Self {
        let url = matches!(settings.backend, CacheBackend::Redis).then(|| settings.url.expose());
        let redis = Arc::new(FailOpenRedis::new(
            url,
            settings.timeout,
            format!("cache {name}"),
            "using Postgres only",
            move || metrics::counter!("cache_errors_total", "cache" => name).increment(1),
        ));
        let namespace = format!("{}{name}", settings.key_prefix);
        let memory = match settings.backend {
            CacheBackend::Memory { max_bytes } => Some(MemoryStore::new(settings.ttl, max_bytes)),
            CacheBackend::Redis | CacheBackend::Off => None,
        };
        let local = (settings.backend == CacheBackend::Redis && settings.local_max_bytes > 0)
            .then(|| LocalTier::new(settings.local_max_bytes));
        register_metrics(name);
        Self {
            name,
            pending: PendingInvalidations::new(name, namespace.clone(), redis.clone()),
            namespace,
            redis,
            memory,
            local,
            settings,
            generation_script: redis::Script::new(GENERATION_SCRIPT),
            entry_script: redis::Script::new(ENTRY_SCRIPT),
            read_script: redis::Script::new(READ_SCRIPT),
        }
    }

    fn generation_key(&self, owner: &str) -> String {
        generation_key(&self.namespace, owner)
    }

    fn entry_key(&self, owner: &str, generation: &str, args: &str) -> String {
        format!("{}:{owner}:g{generation}:{args}", self.namespace)
    }

    /// The cached value for (`owner`, `args`), or `load`'s result, which is then cached.
    pub async fn get_or_load<T, E, F, Fut>(&self, owner: &str, args: &str, load: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // An entry that does not decode (written by another version) is a miss.
        let decode = |json: Bytes| serde_json::from_slice(&json).ok();
        self.cached(owner, args, decode, || async {
            let value = load().await?;
            // A value that cannot be encoded is answered, not cached.
            let json = serde_json::to_vec(&value).map(Bytes::from).unwrap_or_default();
            Ok((value, json))
        })
        .await
    }

    /// [`Cache::get_or_load`] for values kept as they are, such as whole
    /// responses: bytes in, the same bytes out, no encoding. An empty value, or
    /// one over `CACHE_MAX_ENTRY_BYTES`, is answered but never cached.
    pub async fn get_or_load_raw<E, F, Fut>(&self, owner: &str, args: &str, load: F) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        self.cached(owner, args, Some, || async {
            let value = load().await?;
            Ok((value.clone(), value))
        })
        .await
    }

    /// The entry for (`owner`, `args`) as `decode` reads it, or else `load`'s
    /// value, whose encoding is then cached (see [`Cache::keeps`]).
    async fn cached<V, E, F, Fut>(
        &self,
        owner: &str,
        args: &str,
        decode: impl Fn(Bytes) -> Option<V>,
        load: F,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(V, Bytes), E>>,
    {
        if let Some(memory) = &self.memory {
            let (generation, cached) = memory.read(owner, args);
            if let Some(value) = cached.and_then(&decode) {
                self.count_hit();
                return Ok(value);
            }
            self.count_miss();
            let (value, encoded) = load().await?;
            if self.keeps(&encoded) {
                memory.write(owner, generation, args, encoded);
            }
            return Ok(value);
        }
        if self.pending.covers(owner) {
            self.count_skipped("invalidation_pending");
            return Ok(load().await?.0);
        }
        let read = self.read(owner, args).await;
        // Asked after the read, which may be the first answer since an outage.
        let value = match read.value {
            Some(_) if self.redis.recovering(SETTLE) => {
                self.count_skipped("redis_recovering");
                None
            }
            value => value,
        };
        if let Some(value) = value.and_then(&decode) {
            self.count_hit();
            return Ok(value);
        }
        self.count_miss();
        let (value, encoded) = load().await?;
        if let Some(generation) = read.generation
            && self.keeps(&encoded)
        {
            self.store(self.entry_key(owner, &generation, args), encoded).await;
        }
        Ok(value)
    }

    /// Whether an encoded value is cached: not when empty (nothing to keep), nor
    /// when over `CACHE_MAX_ENTRY_BYTES`, which is counted: one huge answer
    /// would otherwise push out thousands of small ones (and fill Redis).
    fn keeps(&self, encoded: &[u8]) -> bool {
        if encoded.len() > self.settings.max_entry_bytes {
            self.count_skipped("too_large");
            return false;
        }
        !encoded.is_empty()
    }

    async fn read(&self, owner: &str, args: &str) -> Read {
        let Some(local) = &self.local else { return self.read_in_one_trip(owner, args).await };
        let Some(generation) = self.generation(owner).await else { return Read { generation: None, value: None } };
        let key = self.entry_key(owner, &generation, args);
        if let Some(value) = local.get(&key) {
            metrics::counter!("cache_local_hits_total", "cache" => self.name).increment(1);
            return Read { generation: Some(generation), value: Some(value) };
        }
        let (script, entry_key) = (&self.entry_script, &key);
        let entry: Option<(Option<Vec<u8>>, Option<i64>)> =
            self.run(|mut conn| async move { script.key(entry_key).invoke_async(&mut conn).await }).await;
        let value = match entry {
            Some((Some(value), Some(ttl_ms))) => {
                let value = Bytes::from(value);
                // The copy lives no longer than the entry in Redis, and is not
                // made of an entry over the bound (written under a larger one).
                if let Ok(ttl_ms) = u64::try_from(ttl_ms)
                    && value.len() <= self.settings.max_entry_bytes
                {
                    local.put(key, value.clone(), Duration::from_millis(ttl_ms));
                }
                Some(value)
            }
            _ => None,
        };
        Read { generation: Some(generation), value }
    }

    async fn read_in_one_trip(&self, owner: &str, args: &str) -> Read {
        let prefix = format!("{}:{owner}:g", self.namespace);
        let (generation_key, epoch_key) = (self.generation_key(owner), epoch_key(&self.namespace));
        let script = &self.read_script;
        let (prefix, fresh) = (&prefix, new_generation());
        let read: Option<(String, Option<Vec<u8>>)> = self
            .run(|mut conn| async move {
                let ttl = GENERATION_TTL_SECS;
                let mut invocation = script.key(&generation_key);
                invocation.key(&epoch_key).arg(prefix).arg(args).arg(fresh).arg(ttl).invoke_async(&mut conn).await
            })
            .await;
        match read {
            Some((generation, value)) => Read { generation: Some(generation), value: value.map(Bytes::from) },
            None => Read { generation: None, value: None },
        }
    }

    /// `owner`'s generation. A new owner gets a random one, as does every write
    /// ([`Cache::invalidate`]): generations are never counted from zero, so a
    /// Redis that restarts empty cannot hand out one that a replica's local tier
    /// holds entries for.
    async fn generation(&self, owner: &str) -> Option<String> {
        let (key, epoch) = (self.generation_key(owner), epoch_key(&self.namespace));
        let (script, fresh, ttl) = (&self.generation_script, new_generation(), GENERATION_TTL_SECS);
        let (key, epoch) = (&key, &epoch);
        self.run(|mut conn| async move { script.key(key).key(epoch).arg(fresh).arg(ttl).invoke_async(&mut conn).await })
            .await
    }

    async fn store(&self, key: String, value: Bytes) {
        let ttl = self.settings.ttl;
        if let Some(local) = &self.local {
            local.put(key.clone(), value.clone(), ttl);
        }
        let seconds = ttl.as_secs().max(1);
        self.run(|mut conn| async move {
            redis::cmd("SET").arg(&key).arg(value.as_ref()).arg("EX").arg(seconds).query_async::<()>(&mut conn).await
        })
        .await;
    }

    fn count_hit(&self) {
        metrics::counter!("cache_hits_total", "cache" => self.name).increment(1);
    }

    fn count_miss(&self) {
        metrics::counter!("cache_misses_total", "cache" => self.name).increment(1);
    }

    fn count_skipped(&self, reason: &'static str) {
        metrics::counter!("cache_skipped_total", "cache" => self.name, "reason" => reason).increment(1);
    }

    /// Makes every cached entry of `owner` stale. If Redis does not take it,
    /// the owner is remembered until it does (see [`pending`]): no entry older
    /// than this call is served afterwards.
    pub async fn invalidate(&self, owner: &str) {
        if let Some(memory) = &self.memory {
            memory.invalidate(owner);
            return;
        }
        if !self.redis.configured() {
            return;
        }
        let (key, fresh) = (self.generation_key(owner), new_generation());
        let taken = self
            .run(|mut conn| async move {
                let mut set = redis::cmd("SET");
                set.arg(&key).arg(fresh).arg("EX").arg(GENERATION_TTL_SECS);
                set.query_async::<()>(&mut conn).await
            })
            .await;
        if taken.is_none() {
            self.pending.add(owner);
        }
    }

    /// Whether Redis failed and has not answered again for long enough since
    /// for this replica to trust its entries ([`SETTLE`]; tests and diagnostics).
    pub fn recovering(&self) -> bool {
        self.redis.recovering(SETTLE)
    }

    /// Owners whose invalidation Redis has not taken yet (tests and diagnostics).
    pub fn pending_invalidations(&self) -> usize {
        self.pending.len()
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

    /// This replica's local tier, if it has one (tests and diagnostics).
    pub fn local_tier(&self) -> Option<&LocalTier> {
        self.local.as_ref()
    }

    async fn run<T, F, Fut>(&self, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.redis.run(op).await
    }
}

fn generation_key(namespace: &str, owner: &str) -> String {
    format!("{namespace}:{owner}:generation")
}

fn epoch_key(namespace: &str) -> String {
    format!("{namespace}:epoch")
}

/// A generation (or epoch) no owner has had: 62 random bits, which leaves room for an
/// `INCR` (the way versions before the local tier gave a new generation, so
/// replicas of both can run side by side during a rolling deploy).
/// The cache's series, at 0 until something happens, so that a hit ratio or
/// an error rate is a number from the start rather than absent.
fn register_metrics(name: &'static str) {
    crate::metrics::handle();
    for counter in ["cache_hits_total", "cache_local_hits_total", "cache_misses_total", "cache_errors_total"] {
        metrics::counter!(counter, "cache" => name).absolute(0);
    }
    metrics::counter!("cache_skipped_total", "cache" => name, "reason" => "too_large").absolute(0);
}

fn new_generation() -> String {
    (rand::random::<u64>() >> 2).to_string()
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
            local_max_bytes: 0,
            max_entry_bytes: 1 << 10,
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
    async fn in_memory_a_value_over_the_entry_bound_is_answered_but_not_kept() {
        let cache = in_memory();
        let calls = AtomicUsize::new(0);
        let large = "x".repeat(2 << 10);

        let first = cache.get_or_load("ada", "big", || load(&calls, &large)).await.unwrap();
        let second = cache.get_or_load("ada", "big", || load(&calls, &large)).await.unwrap();

        assert_eq!((first[0].len(), second[0].len()), (large.len(), large.len()), "served whole both times");
        assert_eq!(calls.load(Ordering::SeqCst), 2, "loaded again: never cached");
        assert!(cache.memory.as_ref().is_some_and(MemoryStore::is_empty));
        let small = cache.get_or_load("ada", "small", || load(&calls, "s")).await.unwrap();
        let again = cache.get_or_load("ada", "small", || load(&calls, "t")).await.unwrap();
        assert_eq!(again, small, "small ones still are");
    }

    #[tokio::test]
    async fn in_memory_the_cache_is_enabled_and_healthy_without_redis() {
        let cache = in_memory();
        assert!(cache.enabled());
        assert_eq!(cache.name(), "memory_cache");
        assert_eq!(cache.check().await, Ok(()));
    }
}
