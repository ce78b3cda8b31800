//! Cache-aside against the real Redis on 127.0.0.1:6379, one key namespace per test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kit::cache::Cache;
use kit::config::{CacheBackend, CacheSettings, Secret};

use kit::testing::{TcpGate, eventually, redis_addr, redis_url};

/// A cache in a namespace of its own, whose keys are deleted afterwards.
struct TestCache {
    cache: Cache,
    namespace: &'static str,
}

/// Each replica's local tier in the tests that run both ways: none (one round
/// trip per read) and the default kind.
const LOCAL_TIERS: [usize; 2] = [0, 1 << 20];

impl TestCache {
    fn new(url: &str) -> Self {
        Self::with_local_tier(url, 0)
    }

    fn with_local_tier(url: &str, local_max_bytes: usize) -> Self {
        let namespace: &'static str =
            Box::leak(format!("test-cache-{}", uuid::Uuid::new_v4().simple()).into_boxed_str());
        Self { cache: Cache::new(namespace, settings(url, local_max_bytes)), namespace }
    }

    /// Another replica over the same Redis keys, with its own local tier.
    fn replica(&self) -> Cache {
        Cache::new(self.namespace, settings(&redis_url(), 1 << 20))
    }

    /// This test's entry keys in Redis (generations left out).
    async fn entries_in_redis(&self) -> Vec<String> {
        let client = redis::Client::open(redis_url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("KEYS").arg(format!("{}:{ENTRY_KEYS}", self.namespace)).query_async(&mut conn).await.unwrap()
    }

    /// Milliseconds left of every key of this test in Redis (-1: no TTL).
    async fn ttls_in_redis(&self) -> Vec<(String, i64)> {
        let client = redis::Client::open(redis_url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}:{ALL_KEYS}", self.namespace)).query_async(&mut conn).await.unwrap();
        let mut ttls = Vec::new();
        for key in keys {
            let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await.unwrap();
            ttls.push((key, ttl));
        }
        ttls
    }

    /// How often this cache skipped a value for `reason`, from the process's metrics.
    fn skipped(&self, reason: &str) -> u64 {
        let series = format!(r#"cache_skipped_total{{cache="{}",reason="{reason}"}} "#, self.namespace);
        let metrics = kit::metrics::render();
        metrics.lines().find_map(|line| line.strip_prefix(&series)?.parse().ok()).unwrap_or(0)
    }

    /// Deletes this test's keys matching `pattern` (after the namespace) from
    /// Redis, as a restart or an eviction would.
    async fn delete_in_redis(&self, pattern: &str) {
        let client = redis::Client::open(redis_url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}:{pattern}", self.namespace)).query_async(&mut conn).await.unwrap();
        assert!(!keys.is_empty());
        let () = redis::cmd("DEL").arg(keys).query_async(&mut conn).await.unwrap();
    }
}

/// Every key: generations and entries.
const ALL_KEYS: &str = "*";
/// Entries only, keeping the generations.
const ENTRY_KEYS: &str = "*:g[0-9]*";

/// `CACHE_MAX_ENTRY_BYTES` of these tests: small, so a large entry is cheap to make.
const MAX_ENTRY_BYTES: usize = 4 << 10;

fn settings(url: &str, local_max_bytes: usize) -> CacheSettings {
    CacheSettings {
        backend: CacheBackend::Redis,
        url: Secret::new(url),
        ttl: Duration::from_secs(60),
        timeout: Duration::from_millis(200),
        key_prefix: String::new(),
        local_max_bytes,
        max_entry_bytes: MAX_ENTRY_BYTES,
    }
}

impl Drop for TestCache {
    fn drop(&mut self) {
        let pattern = format!("{}:*", self.namespace);
        let _ = std::thread::spawn(move || {
            let Ok(client) = redis::Client::open(redis_url()) else { return };
            let Ok(mut conn) = client.get_connection() else { return };
            let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut conn).unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
            }
        })
        .join();
    }
}

async fn load(calls: &AtomicUsize, value: &str) -> Result<Vec<String>, std::convert::Infallible> {
    calls.fetch_add(1, Ordering::SeqCst);
    Ok(vec![value.to_owned()])
}

#[tokio::test]
async fn a_second_read_is_a_hit_and_does_not_load() {
    for local in LOCAL_TIERS {
        let test = TestCache::with_local_tier(&redis_url(), local);
        let calls = AtomicUsize::new(0);

        let first = test.cache.get_or_load("user-1", "page-1", || load(&calls, "a")).await.unwrap();
        let second = test.cache.get_or_load("user-1", "page-1", || load(&calls, "b")).await.unwrap();

        assert_eq!(first, vec!["a"]);
        assert_eq!(second, vec!["a"], "served from the cache (local tier of {local} bytes)");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn invalidating_an_owner_makes_all_its_pages_miss_and_no_one_elses() {
    for local in LOCAL_TIERS {
        let test = TestCache::with_local_tier(&redis_url(), local);
        let calls = AtomicUsize::new(0);
        for (owner, page) in [("alice", "p1"), ("alice", "p2"), ("bob", "p1")] {
            test.cache.get_or_load(owner, page, || load(&calls, "old")).await.unwrap();
        }

        test.cache.invalidate("alice").await;

        let p1 = test.cache.get_or_load("alice", "p1", || load(&calls, "new")).await.unwrap();
        let p2 = test.cache.get_or_load("alice", "p2", || load(&calls, "new")).await.unwrap();
        let bob = test.cache.get_or_load("bob", "p1", || load(&calls, "new")).await.unwrap();
        assert_eq!((p1, p2), (vec!["new".to_owned()], vec!["new".to_owned()]), "read after own write sees the write");
        assert_eq!(bob, vec!["old"], "other owners keep their entries");
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }
}

#[tokio::test]
async fn a_replica_serves_repeated_reads_from_its_local_tier() {
    let test = TestCache::with_local_tier(&redis_url(), 1 << 20);
    let calls = AtomicUsize::new(0);
    test.cache.get_or_load("u", "p", || load(&calls, "a")).await.unwrap();
    assert_eq!(test.cache.local_tier().map(|tier| tier.len()), Some(1));

    test.delete_in_redis(ENTRY_KEYS).await;
    let again = test.cache.get_or_load("u", "p", || load(&calls, "b")).await.unwrap();

    assert_eq!(again, vec!["a"], "the replica's own copy, under the generation Redis still has");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_write_on_one_replica_is_seen_by_the_next_read_on_another_despite_its_local_copy() {
    let test = TestCache::with_local_tier(&redis_url(), 1 << 20);
    let other = test.replica();
    let calls = AtomicUsize::new(0);
    let first = other.get_or_load("u", "p", || load(&calls, "before")).await.unwrap();
    let copied = other.get_or_load("u", "p", || load(&calls, "unused")).await.unwrap();
    assert_eq!((first, copied), (vec!["before".to_owned()], vec!["before".to_owned()]));

    test.cache.invalidate("u").await;
    let after = other.get_or_load("u", "p", || load(&calls, "after")).await.unwrap();

    assert_eq!(after, vec!["after"]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_redis_that_lost_its_keys_never_revives_a_replica_s_local_copy() {
    let test = TestCache::with_local_tier(&redis_url(), 1 << 20);
    let calls = AtomicUsize::new(0);
    test.cache.get_or_load("u", "p", || load(&calls, "before")).await.unwrap();
    test.cache.invalidate("u").await;
    test.cache.get_or_load("u", "p", || load(&calls, "copied")).await.unwrap();

    // As after a restart of a Redis that keeps nothing on disk, or an eviction:
    // a write in the meantime would be lost with the generation.
    test.delete_in_redis(ALL_KEYS).await;
    let after = test.cache.get_or_load("u", "p", || load(&calls, "reloaded")).await.unwrap();

    assert_eq!(after, vec!["reloaded"], "a fresh generation, never one the local copy was kept under");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn raw_values_are_kept_as_given_and_empty_ones_are_not_kept() {
    let test = TestCache::with_local_tier(&redis_url(), 1 << 20);
    let body = bytes::Bytes::from_static(br#"{"data":{"a":"\"quoted\""}}"#);
    let first: Result<_, ()> = test.cache.get_or_load_raw("u", "r", || async { Ok(body.clone()) }).await;
    let fresh = test.replica();
    let second: Result<_, ()> = fresh.get_or_load_raw("u", "r", || async { Ok(bytes::Bytes::new()) }).await;
    assert_eq!((first.unwrap(), second.unwrap()), (body.clone(), body), "from Redis, byte for byte");

    let empty: Result<_, ()> = test.cache.get_or_load_raw("u", "e", || async { Ok(bytes::Bytes::new()) }).await;
    let loaded_again: Result<_, ()> =
        test.cache.get_or_load_raw("u", "e", || async { Ok(bytes::Bytes::from_static(b"x")) }).await;
    assert_eq!((empty.unwrap(), loaded_again.unwrap()), (bytes::Bytes::new(), bytes::Bytes::from_static(b"x")));
}

#[tokio::test]
async fn arguments_key_separate_entries() {
    let test = TestCache::new(&redis_url());
    let calls = AtomicUsize::new(0);
    let a = test.cache.get_or_load("u", "first=10", || load(&calls, "ten")).await.unwrap();
    let b = test.cache.get_or_load("u", "first=20", || load(&calls, "twenty")).await.unwrap();
    assert_eq!((a[0].as_str(), b[0].as_str()), ("ten", "twenty"));
}

#[tokio::test]
async fn an_unreachable_redis_never_fails_a_read_and_is_rested_after_repeated_errors() {
    let test = TestCache::new("redis://127.0.0.1:1");
    let calls = AtomicUsize::new(0);

    for _ in 0..4 {
        let value = test.cache.get_or_load("u", "p", || load(&calls, "from postgres")).await.unwrap();
        assert_eq!(value, vec!["from postgres"]);
    }
    test.cache.invalidate("u").await;

    assert_eq!(calls.load(Ordering::SeqCst), 4, "every read fell back to the loader");
    assert!(test.cache.cooling_down(), "repeated errors pause Redis use");
}

#[tokio::test]
async fn entries_over_the_bound_are_answered_but_kept_in_no_tier_and_counted() {
    kit::metrics::handle();
    for local in LOCAL_TIERS {
        let test = TestCache::with_local_tier(&redis_url(), local);
        let calls = AtomicUsize::new(0);
        let large = "x".repeat(MAX_ENTRY_BYTES);

        let first = test.cache.get_or_load("u", "rows", || load(&calls, &large)).await.unwrap();
        let second = test.cache.get_or_load("u", "rows", || load(&calls, &large)).await.unwrap();
        let body = bytes::Bytes::from(format!(r#"{{"data":"{large}"}}"#));
        let raw: Result<_, ()> = test.cache.get_or_load_raw("u", "response", || async { Ok(body.clone()) }).await;

        assert_eq!((first, second), (vec![large.clone()], vec![large.clone()]), "served whole");
        assert_eq!(raw.unwrap(), body, "a whole response too");
        assert_eq!(calls.load(Ordering::SeqCst), 2, "loaded every time (local tier of {local} bytes)");
        assert_eq!(test.entries_in_redis().await, Vec::<String>::new(), "nothing over the bound reaches Redis");
        assert!(test.cache.local_tier().is_none_or(|tier| tier.is_empty()), "nor the local tier");
        assert_eq!(test.skipped("too_large"), 3);

        let small = test.cache.get_or_load("u", "small", || load(&calls, "s")).await.unwrap();
        assert_eq!(test.cache.get_or_load("u", "small", || load(&calls, "t")).await.unwrap(), small);
        assert_eq!(test.entries_in_redis().await.len(), 1, "values within the bound are still kept");
    }
}

#[tokio::test]
async fn every_key_the_cache_writes_expires_so_volatile_lru_can_evict_it() {
    for local in LOCAL_TIERS {
        let test = TestCache::with_local_tier(&redis_url(), local);
        let calls = AtomicUsize::new(0);
        test.cache.get_or_load("created-by-a-read", "p", || load(&calls, "a")).await.unwrap();
        test.cache.invalidate("created-by-a-write").await;

        let ttls = test.ttls_in_redis().await;

        assert_eq!(ttls.len(), 4, "two generations, the epoch and one entry: {ttls:?}");
        assert!(ttls.iter().all(|(_, ttl)| *ttl > 0), "each has a TTL (local tier of {local} bytes): {ttls:?}");
    }
}

/// `u`'s entry `p` as `cache` answers it, loading `value` on a miss.
async fn read(cache: &Cache, calls: &AtomicUsize, value: &str) -> String {
    cache.get_or_load("u", "p", || load(calls, value)).await.unwrap().remove(0)
}

/// Waits until `cache` reaches Redis again after its gate was opened, so a
/// read that follows uses Redis (rather than falling back while it reconnects).
async fn until_reachable(cache: &Cache) {
    use kit::health::Check;
    eventually("the cache to reach Redis again", || async { cache.check().await.is_ok() }).await;
}

/// Waits until `cache` trusts its entries again after an outage.
async fn until_settled(cache: &Cache) {
    until_reachable(cache).await;
    eventually("the cache to trust Redis again", || async { !cache.recovering() }).await;
}

#[tokio::test]
async fn a_write_redis_did_not_take_is_seen_once_redis_is_back_on_every_replica() {
    for local in LOCAL_TIERS {
        let gate = TcpGate::start(redis_addr(), true).await;
        let test = TestCache::with_local_tier(&format!("redis://127.0.0.1:{}", gate.port), local);
        let other = test.replica();
        let calls = AtomicUsize::new(0);
        for round in 0..4 {
            let (before, during, after) =
                (format!("before {round}"), format!("during {round}"), format!("after {round}"));
            until_settled(&test.cache).await;
            test.cache.invalidate("u").await;
            assert_eq!(read(&test.cache, &calls, &before).await, before);
            assert_eq!(read(&test.cache, &calls, "unused").await, before, "cached");
            assert_eq!(read(&other, &calls, "unused").await, before, "cached for the other replica too");

            gate.close();
            test.cache.invalidate("u").await;
            assert_eq!(test.cache.pending_invalidations(), 1, "the write Redis did not take is remembered");
            assert_eq!(read(&test.cache, &calls, &during).await, during, "meanwhile from the loader");
            gate.open();
            until_reachable(&test.cache).await;

            let seen = read(&test.cache, &calls, &after).await;
            assert_eq!(
                seen, after,
                "round {round}, local tier of {local} bytes: never the entry from before the write"
            );
            eventually("the invalidation to reach Redis", || async { test.cache.pending_invalidations() == 0 }).await;
            assert_eq!(read(&other, &calls, &after).await, after, "nor on a replica that never lost Redis");
            until_settled(&test.cache).await;
            assert_eq!(read(&test.cache, &calls, "unused").await, after, "cached again afterwards");
        }
    }
}

#[tokio::test]
async fn more_owners_than_are_remembered_make_every_entry_stale_once_redis_is_back() {
    let gate = TcpGate::start(redis_addr(), true).await;
    let test = TestCache::with_local_tier(&format!("redis://127.0.0.1:{}", gate.port), 1 << 20);
    let other = test.replica();
    let calls = AtomicUsize::new(0);
    assert_eq!(read(&test.cache, &calls, "before").await, "before");
    assert_eq!(read(&other, &calls, "unused").await, "before");

    gate.close();
    // One more than the 10,000 owners remembered one by one; `u` is not among them.
    for n in 0..=10_000 {
        test.cache.invalidate(&format!("owner-{n}")).await;
    }
    assert_eq!(read(&test.cache, &calls, "during").await, "during", "this replica trusts no entry meanwhile");
    gate.open();
    eventually("the new epoch to reach Redis", || async { test.cache.pending_invalidations() == 0 }).await;

    assert_eq!(read(&other, &calls, "after").await, "after", "every entry of the namespace is stale");
    until_settled(&test.cache).await;
    assert_eq!(read(&test.cache, &calls, "unused").await, "after");
}

#[tokio::test]
async fn a_replica_that_saw_redis_fail_trusts_no_entry_until_the_writer_s_repair_could_land() {
    let (writer_gate, reader_gate) =
        (TcpGate::start(redis_addr(), true).await, TcpGate::start(redis_addr(), true).await);
    let writer = TestCache::with_local_tier(&format!("redis://127.0.0.1:{}", writer_gate.port), 1 << 20);
    let reader = Cache::new(writer.namespace, settings(&format!("redis://127.0.0.1:{}", reader_gate.port), 1 << 20));
    let calls = AtomicUsize::new(0);
    assert_eq!(read(&writer.cache, &calls, "before").await, "before");
    assert_eq!(read(&reader, &calls, "unused").await, "before");

    // Redis away for both; the write cannot invalidate.
    writer_gate.close();
    reader_gate.close();
    writer.cache.invalidate("u").await;
    assert_eq!(read(&reader, &calls, "during").await, "during");
    // Back for the reader first: the writer's repair has not landed.
    reader_gate.open();
    until_reachable(&reader).await;
    assert_eq!(read(&reader, &calls, "after").await, "after", "not the entry from before the write");

    writer_gate.open();
    eventually("the invalidation to reach Redis", || async { writer.cache.pending_invalidations() == 0 }).await;
    until_settled(&reader).await;
    assert_eq!(read(&reader, &calls, "reloaded").await, "reloaded", "the write's repair made the old entry stale");
}
