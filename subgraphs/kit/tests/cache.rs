//! Cache-aside against the real Redis on 127.0.0.1:6379, one key namespace per test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kit::cache::Cache;
use kit::config::{CacheBackend, CacheSettings, Secret};

use kit::testing::redis_url;

/// A cache in a namespace of its own, whose keys are deleted afterwards.
struct TestCache {
    cache: Cache,
    namespace: &'static str,
}

impl TestCache {
    fn new(url: &str) -> Self {
        let namespace: &'static str =
            Box::leak(format!("test-cache-{}", uuid::Uuid::new_v4().simple()).into_boxed_str());
        let settings = CacheSettings {
            backend: CacheBackend::Redis,
            url: Secret::new(url),
            ttl: Duration::from_secs(60),
            timeout: Duration::from_millis(200),
            key_prefix: String::new(),
        };
        Self { cache: Cache::new(namespace, settings), namespace }
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
    let test = TestCache::new(&redis_url());
    let calls = AtomicUsize::new(0);

    let first = test.cache.get_or_load("user-1", "page-1", || load(&calls, "a")).await.unwrap();
    let second = test.cache.get_or_load("user-1", "page-1", || load(&calls, "b")).await.unwrap();

    assert_eq!(first, vec!["a"]);
    assert_eq!(second, vec!["a"], "served from the cache");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn invalidating_an_owner_makes_all_its_pages_miss_and_no_one_elses() {
    let test = TestCache::new(&redis_url());
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
