//! The in-process cache store: the same generation-per-owner and TTL semantics
//! as the Redis keys, bounded in bytes (least recently used entries go first).
//!
//! Only correct when one process serves every read and write of the data it
//! caches (the monolith): replicas would each hold their own generations and
//! miss each other's invalidations.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

/// Owners whose generation is remembered. Forgetting one is safe (see [`State::floor`])
/// but makes every owner's entries stale, so keep many: about 100 bytes each.
const GENERATIONS_CAPACITY: NonZeroUsize = NonZeroUsize::new(100_000).expect("not zero");
/// Counted per entry besides its key and value: the map's own bookkeeping.
const ENTRY_OVERHEAD: usize = 64;

pub struct MemoryStore {
    state: Mutex<State>,
    ttl: Duration,
    max_bytes: usize,
}

struct State {
    entries: LruCache<String, Entry>,
    /// Bytes held by `entries` (keys, values and overhead).
    bytes: usize,
    generations: LruCache<String, u64>,
    /// The last generation handed out; generations only grow.
    clock: u64,
    /// The generation of every owner not in `generations`. It is raised above
    /// `clock` whenever an owner's generation is forgotten, so that owner can
    /// never read an entry written before its last invalidation.
    floor: u64,
}

struct Entry {
    expires_at: Instant,
    value: String,
}

impl Entry {
    fn cost(key: &str, value: &str) -> usize {
        key.len() + value.len() + ENTRY_OVERHEAD
    }
}

impl MemoryStore {
    pub fn new(ttl: Duration, max_bytes: usize) -> Self {
        let state = State {
            entries: LruCache::unbounded(),
            bytes: 0,
            generations: LruCache::new(GENERATIONS_CAPACITY),
            clock: 0,
            floor: 0,
        };
        Self { state: Mutex::new(state), ttl, max_bytes }
    }

    /// `owner`'s current generation and the live entry for `args` in it, if any.
    pub fn read(&self, owner: &str, args: &str) -> (u64, Option<String>) {
        let mut state = self.lock();
        let generation = state.generation(owner);
        let key = entry_key(owner, generation, args);
        match state.entries.get(&key) {
            Some(entry) if entry.expires_at > Instant::now() => return (generation, Some(entry.value.clone())),
            Some(_) => {}
            None => return (generation, None),
        }
        // Expired: dropped when met, so it stops counting against the bound.
        state.remove(&key);
        (generation, None)
    }

    /// Stores `value` for (`owner`, `args`) if `generation` is still the owner's:
    /// a value loaded before an invalidation is never kept.
    pub fn write(&self, owner: &str, generation: u64, args: &str, value: String) {
        let key = entry_key(owner, generation, args);
        let cost = Entry::cost(&key, &value);
        if cost > self.max_bytes {
            return;
        }
        let mut state = self.lock();
        if state.generation(owner) != generation {
            return;
        }
        let entry = Entry { expires_at: Instant::now() + self.ttl, value };
        if let Some((old_key, old)) = state.entries.push(key, entry) {
            state.bytes -= Entry::cost(&old_key, &old.value);
        }
        state.bytes += cost;
        while state.bytes > self.max_bytes {
            let Some((old_key, old)) = state.entries.pop_lru() else { break };
            state.bytes -= Entry::cost(&old_key, &old.value);
        }
    }

    /// Makes every entry of `owner` stale at once.
    pub fn invalidate(&self, owner: &str) {
        let mut state = self.lock();
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
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held, as counted against the bound.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way
        // that matters more than losing the cache: keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn generation(&mut self, owner: &str) -> u64 {
        self.generations.get(owner).copied().unwrap_or(self.floor)
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.pop(key) {
            self.bytes -= Entry::cost(key, &old.value);
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
        store.write("ada", generation, "page-1", "[1]".into());
        assert_eq!(store.read("ada", "page-1"), (generation, Some("[1]".into())));
        assert_eq!(store.read("bob", "page-1").1, None, "owners do not share entries");
    }

    #[test]
    fn invalidation_makes_every_entry_of_the_owner_stale_and_no_one_else_s() {
        let store = store();
        let (g, _) = store.read("ada", "x");
        store.write("ada", g, "page-1", "a1".into());
        store.write("ada", g, "page-2", "a2".into());
        let (gb, _) = store.read("bob", "x");
        store.write("bob", gb, "page-1", "b1".into());

        store.invalidate("ada");

        assert_eq!(store.read("ada", "page-1").1, None);
        assert_eq!(store.read("ada", "page-2").1, None);
        assert_eq!(store.read("bob", "page-1").1, Some("b1".into()));
    }

    #[test]
    fn a_value_loaded_before_an_invalidation_is_not_kept() {
        let store = store();
        let (before, _) = store.read("ada", "page-1");
        store.invalidate("ada");
        store.write("ada", before, "page-1", "stale".into());
        assert_eq!(store.read("ada", "page-1").1, None);
        assert!(store.is_empty());
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let store = MemoryStore::new(Duration::ZERO, 1 << 20);
        let (g, _) = store.read("ada", "page-1");
        store.write("ada", g, "page-1", "v".into());
        assert_eq!(store.read("ada", "page-1").1, None);
        assert!(store.is_empty(), "an expired entry is dropped when met");
    }

    #[test]
    fn the_byte_bound_holds_and_the_least_recently_used_go_first() {
        let value = "v".repeat(100);
        let one = Entry::cost(&entry_key("ada", 0, "page-0"), &value);
        let store = MemoryStore::new(Duration::from_secs(60), one * 3);
        for page in 0..3 {
            store.write("ada", 0, &format!("page-{page}"), value.clone());
        }
        assert!(store.read("ada", "page-0").1.is_some(), "page-0 is now the most recently used");
        store.write("ada", 0, "page-3", value.clone());

        assert_eq!(store.len(), 3);
        assert!(store.bytes() <= one * 3);
        assert_eq!(store.read("ada", "page-1").1, None, "the least recently used went");
        assert!(store.read("ada", "page-0").1.is_some());
        assert!(store.read("ada", "page-3").1.is_some());
    }

    #[test]
    fn a_value_larger_than_the_whole_cache_is_not_stored() {
        let store = MemoryStore::new(Duration::from_secs(60), 100);
        store.write("ada", 0, "page", "v".repeat(200));
        assert!(store.is_empty());
    }

    #[test]
    fn forgetting_an_owner_s_generation_never_revives_its_stale_entries() {
        let store = store();
        let (g, _) = store.read("ada", "page");
        store.write("ada", g, "page", "old".into());
        store.invalidate("ada");
        let (g2, _) = store.read("ada", "page");
        store.write("ada", g2, "page", "new".into());
        // Push ada's generation out of the bounded map.
        for n in 0..GENERATIONS_CAPACITY.get() {
            store.invalidate(&format!("owner-{n}"));
        }
        let (g3, value) = store.read("ada", "page");
        assert_eq!(value, None, "a forgotten owner starts above every generation it had");
        assert!(g3 > g2);
    }
}
