//! The in-process cache store: the same generation-per-owner and TTL semantics
//! as the Redis keys, bounded in bytes (least recently used entries go first).
//!
//! Only correct when one process serves every read and write of the data it
//! caches (the monolith): replicas would each hold their own generations and
//! miss each other's invalidations.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lru::LruCache;

/// Owners whose generation is remembered. Forgetting one is safe (see [`State::floor`])
/// but makes every owner's entries stale, so keep many: about 100 bytes each.
const GENERATIONS_CAPACITY: NonZeroUsize = NonZeroUsize::new(100_000).expect("not zero");
/// Counted per entry besides its key and value: the map's own bookkeeping.
const ENTRY_OVERHEAD: usize = 64;

pub struct MemoryStore {
    state: Mutex<State>,
    ttl: Duration,
}

struct State {
    entries: Entries,
    generations: LruCache<String, u64>,
    /// The last generation handed out; generations only grow.
    clock: u64,
    /// The generation of every owner not in `generations`. It is raised above
    /// `clock` whenever an owner's generation is forgotten, so that owner can
    /// never read an entry written before its last invalidation.
    floor: u64,
}

impl MemoryStore {
    pub fn new(ttl: Duration, max_bytes: usize) -> Self {
        let state = State {
            entries: Entries::new(max_bytes),
            generations: LruCache::new(GENERATIONS_CAPACITY),
            clock: 0,
            floor: 0,
        };
        Self { state: Mutex::new(state), ttl }
    }

    /// `owner`'s current generation and the live entry for `args` in it, if any.
    pub fn read(&self, owner: &str, args: &str) -> (u64, Option<Bytes>) {
        let mut state = lock(&self.state);
        let generation = state.generation(owner);
        let value = state.entries.get(&entry_key(owner, generation, args));
        (generation, value)
    }

    /// Stores `value` for (`owner`, `args`) if `generation` is still the owner's:
    /// a value loaded before an invalidation is never kept.
    pub fn write(&self, owner: &str, generation: u64, args: &str, value: Bytes) {
        let mut state = lock(&self.state);
        if state.generation(owner) != generation {
            return;
        }
        state.entries.put(entry_key(owner, generation, args), value, self.ttl);
    }

    /// Makes every entry of `owner` stale at once.
    pub fn invalidate(&self, owner: &str) {
        let mut state = lock(&self.state);
        state.clock += 1;
        let generation = state.clock;
        if let Some((forgotten, _)) = state.generations.push(owner.to_owned(), generation)
            && forgotten != owner
        {
            state.clock += 1;
            state.floor = state.clock;
        }
    }

    /// Entries held (tests and diagnostics).
    pub fn len(&self) -> usize {
        lock(&self.state).entries.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held, as counted against the bound.
    pub fn bytes(&self) -> usize {
        lock(&self.state).entries.bytes
    }
}

impl State {
    fn generation(&mut self, owner: &str) -> u64 {
        self.generations.get(owner).copied().unwrap_or(self.floor)
    }
}

/// Each replica's own copy of entries it read from (or wrote to) Redis, under
/// their full keys. An entry's key names its owner's generation, and the
/// generation is read from Redis on every request, so a copy is never served
/// after its owner's invalidation on any replica: no generation value is ever
/// used twice (see `Cache::generation`). It spares Redis sending the same large
/// value over and over to every replica.
pub struct LocalTier {
    entries: Mutex<Entries>,
}

impl LocalTier {
    pub fn new(max_bytes: usize) -> Self {
        Self { entries: Mutex::new(Entries::new(max_bytes)) }
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        lock(&self.entries).get(key)
    }

    /// Keeps `value` for at most `ttl`, the time its Redis copy has left.
    pub fn put(&self, key: String, value: Bytes, ttl: Duration) {
        lock(&self.entries).put(key, value, ttl);
    }

    /// Entries held (tests and diagnostics).
    pub fn len(&self) -> usize {
        lock(&self.entries).map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the maps inconsistent in a way
    // that matters more than losing the cache: keep serving.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Values under keys, bounded in bytes (least recently used first out), each
/// living until its own expiry.
struct Entries {
    map: LruCache<String, Entry>,
    /// Bytes held by `map` (keys, values and overhead).
    bytes: usize,
    max_bytes: usize,
}

struct Entry {
    expires_at: Instant,
    value: Bytes,
}

impl Entry {
    fn cost(key: &str, value: &[u8]) -> usize {
        key.len() + value.len() + ENTRY_OVERHEAD
    }
}

impl Entries {
    fn new(max_bytes: usize) -> Self {
        Self { map: LruCache::unbounded(), bytes: 0, max_bytes }
    }

    fn get(&mut self, key: &str) -> Option<Bytes> {
        match self.map.get(key) {
            Some(entry) if entry.expires_at > Instant::now() => return Some(entry.value.clone()),
            Some(_) => {}
            None => return None,
        }
        // Expired: dropped when met, so it stops counting against the bound.
        if let Some(old) = self.map.pop(key) {
            self.bytes -= Entry::cost(key, &old.value);
        }
        None
    }

    fn put(&mut self, key: String, value: Bytes, ttl: Duration) {
        let cost = Entry::cost(&key, &value);
        if cost > self.max_bytes {
            return;
        }
        let entry = Entry { expires_at: Instant::now() + ttl, value };
        if let Some((old_key, old)) = self.map.push(key, entry) {
            self.bytes -= Entry::cost(&old_key, &old.value);
        }
        self.bytes += cost;
        while self.bytes > self.max_bytes {
            let Some((old_key, old)) = self.map.pop_lru() else { break };
            self.bytes -= Entry::cost(&old_key, &old.value);
        }
    }
}

fn entry_key(owner: &str, generation: u64, args: &str) -> String {
    format!("{owner}:g{generation}:{args}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> MemoryStore {
        MemoryStore::new(Duration::from_secs(60), 1 << 20)
    }

    #[test]
    fn a_written_value_is_read_back_in_its_generation() {
        let store = store();
        let (generation, none) = store.read("ada", "page-1");
        assert_eq!(none, None);
        store.write("ada", generation, "page-1", Bytes::from_static(b"[1]"));
        assert_eq!(store.read("ada", "page-1"), (generation, Some(Bytes::from_static(b"[1]"))));
        assert_eq!(store.read("bob", "page-1").1, None, "owners do not share entries");
    }

    #[test]
    fn invalidation_makes_every_entry_of_the_owner_stale_and_no_one_else_s() {
        let store = store();
        let (g, _) = store.read("ada", "x");
        store.write("ada", g, "page-1", Bytes::from_static(b"a1"));
        store.write("ada", g, "page-2", Bytes::from_static(b"a2"));
        let (gb, _) = store.read("bob", "x");
        store.write("bob", gb, "page-1", Bytes::from_static(b"b1"));

        store.invalidate("ada");

        assert_eq!(store.read("ada", "page-1").1, None);
        assert_eq!(store.read("ada", "page-2").1, None);
        assert_eq!(store.read("bob", "page-1").1, Some(Bytes::from_static(b"b1")));
    }

    #[test]
    fn a_value_loaded_before_an_invalidation_is_not_kept() {
        let store = store();
        let (before, _) = store.read("ada", "page-1");
        store.invalidate("ada");
        store.write("ada", before, "page-1", Bytes::from_static(b"stale"));
        assert_eq!(store.read("ada", "page-1").1, None);
        assert!(store.is_empty());
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let store = MemoryStore::new(Duration::ZERO, 1 << 20);
        let (g, _) = store.read("ada", "page-1");
        store.write("ada", g, "page-1", Bytes::from_static(b"v"));
        assert_eq!(store.read("ada", "page-1").1, None);
        assert!(store.is_empty(), "an expired entry is dropped when met");
    }

    #[test]
    fn the_byte_bound_holds_and_the_least_recently_used_go_first() {
        let value = "v".repeat(100);
        let one = Entry::cost(&entry_key("ada", 0, "page-0"), value.as_bytes());
        let store = MemoryStore::new(Duration::from_secs(60), one * 3);
        for page in 0..3 {
            store.write("ada", 0, &format!("page-{page}"), Bytes::from(value.clone()));
        }
        assert!(store.read("ada", "page-0").1.is_some(), "page-0 is now the most recently used");
        store.write("ada", 0, "page-3", Bytes::from(value.clone()));

        assert_eq!(store.len(), 3);
        assert!(store.bytes() <= one * 3);
        assert_eq!(store.read("ada", "page-1").1, None, "the least recently used went");
        assert!(store.read("ada", "page-0").1.is_some());
        assert!(store.read("ada", "page-3").1.is_some());
    }

    #[test]
    fn a_value_larger_than_the_whole_cache_is_not_stored() {
        let store = MemoryStore::new(Duration::from_secs(60), 100);
        store.write("ada", 0, "page", Bytes::from("v".repeat(200)));
        assert!(store.is_empty());
    }

    #[test]
    fn forgetting_an_owner_s_generation_never_revives_its_stale_entries() {
        let store = store();
        let (g, _) = store.read("ada", "page");
        store.write("ada", g, "page", Bytes::from_static(b"old"));
        store.invalidate("ada");
        let (g2, _) = store.read("ada", "page");
        store.write("ada", g2, "page", Bytes::from_static(b"new"));
        // Push ada's generation out of the bounded map.
        for n in 0..GENERATIONS_CAPACITY.get() {
            store.invalidate(&format!("owner-{n}"));
        }
        let (g3, value) = store.read("ada", "page");
        assert_eq!(value, None, "a forgotten owner starts above every generation it had");
        assert!(g3 > g2);
    }
}
