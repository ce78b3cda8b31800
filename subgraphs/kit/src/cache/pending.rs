//! Invalidations Redis did not take: the owners a write could not give a new
//! generation (Redis cut off, slow, or resting), remembered by the replica
//! that made the write until Redis has taken one for them.
//!
//! While an owner is here, this replica answers the owner from the loader and
//! keeps nothing (its entries in Redis may be older than its last write). A
//! task retries every [`RETRY_INTERVAL`], despite the fail-open cool-down so
//! that the repair lands as soon as Redis answers: one pipeline gives every
//! remembered owner a new generation, which every replica reads on its next
//! request. More owners than [`CAPACITY`] are not remembered one by one: the
//! namespace then gets a new epoch instead (part of every entry key), which
//! makes every entry stale at once, and until then this replica caches nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fail_open::FailOpenRedis;

/// Owners remembered one by one (about 100 bytes each); beyond them the
/// repair is a new epoch.
pub(super) const CAPACITY: usize = 10_000;
/// How often the repair is tried while Redis is away, and so, once it is back,
/// about the longest another replica can still read an entry older than a
/// write made here during the outage.
pub(super) const RETRY_INTERVAL: Duration = Duration::from_millis(250);

pub(super) struct PendingInvalidations {
    /// Metric label.
    name: &'static str,
    /// The cache's namespace: generation and epoch keys are made from it.
    namespace: String,
    redis: Arc<FailOpenRedis>,
    /// Whether `state` holds anything: read on every cache read without the lock.
    any: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Owner → number of its latest failed invalidation.
    owners: HashMap<String, u64>,
    /// Number of the latest failed invalidation that did not fit in `owners`:
    /// then every owner may have an entry older than its last write.
    overflow: Option<u64>,
    /// Failed invalidations so far, numbering them.
    failures: u64,
    /// Whether the retry task runs.
    retrying: bool,
}

/// What one repair covers: every failure numbered up to `upto`.
struct Repair {
    owners: Vec<String>,
    new_epoch: bool,
    upto: u64,
}

impl PendingInvalidations {
    pub(super) fn new(name: &'static str, namespace: String, redis: Arc<FailOpenRedis>) -> Arc<Self> {
        Arc::new(Self { name, namespace, redis, any: AtomicBool::new(false), state: Mutex::default() })
    }

    /// Whether `owner`'s cached entries may be older than its last write.
    pub(super) fn covers(&self, owner: &str) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let state = self.lock();
        state.overflow.is_some() || state.owners.contains_key(owner)
    }

    /// Owners waiting for their invalidation (counting an overflow as one more).
    pub(super) fn len(&self) -> usize {
        let state = self.lock();
        state.owners.len() + usize::from(state.overflow.is_some())
    }

    /// Remembers that `owner`'s invalidation failed, and starts the retry.
    pub(super) fn add(self: &Arc<Self>, owner: &str) {
        let mut state = self.lock();
        state.failures += 1;
        let number = state.failures;
        if state.owners.len() < CAPACITY || state.owners.contains_key(owner) {
            state.owners.insert(owner.to_owned(), number);
        } else {
            state.overflow = Some(number);
        }
        self.any.store(true, Ordering::Release);
        self.count(&state);
        if state.retrying {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(cache = self.name, "no runtime to retry a cache invalidation on");
            return;
        };
        state.retrying = true;
        runtime.spawn(self.clone().retry());
    }

    /// Tries the repair every [`RETRY_INTERVAL`] until nothing is pending.
    async fn retry(self: Arc<Self>) {
        loop {
            tokio::time::sleep(RETRY_INTERVAL).await;
            let Some(repair) = self.next_repair() else { return };
            if self.apply(&repair).await.is_some() {
                tracing::info!(
                    cache = self.name,
                    owners = repair.owners.len(),
                    new_epoch = repair.new_epoch,
                    "Redis is back: invalidated what writes during its absence could not"
                );
                self.forget(&repair);
            }
        }
    }

    /// What is pending now; `None` (and the retry task ends) when nothing is.
    fn next_repair(&self) -> Option<Repair> {
        let mut state = self.lock();
        if state.owners.is_empty() && state.overflow.is_none() {
            state.retrying = false;
            return None;
        }
        let new_epoch = state.overflow.is_some();
        let owners = if new_epoch { Vec::new() } else { state.owners.keys().cloned().collect() };
        Some(Repair { owners, new_epoch, upto: state.failures })
    }

    async fn apply(&self, repair: &Repair) -> Option<()> {
        let mut pipeline = redis::pipe();
        let ttl = super::GENERATION_TTL_SECS;
        if repair.new_epoch {
            let key = super::epoch_key(&self.namespace);
            pipeline.cmd("SET").arg(key).arg(super::new_generation()).arg("EX").arg(ttl).ignore();
        }
        for owner in &repair.owners {
            let key = super::generation_key(&self.namespace, owner);
            pipeline.cmd("SET").arg(key).arg(super::new_generation()).arg("EX").arg(ttl).ignore();
        }
        let pipeline = &pipeline;
        self.redis.run_despite_cool_down(|mut conn| async move { pipeline.query_async::<()>(&mut conn).await }).await
    }

    /// Drops what `repair` covered; failures after it stay.
    fn forget(&self, repair: &Repair) {
        let mut state = self.lock();
        if repair.new_epoch {
            state.owners.retain(|_, number| *number > repair.upto);
        } else {
            for owner in &repair.owners {
                if state.owners.get(owner).is_some_and(|number| *number <= repair.upto) {
                    state.owners.remove(owner);
                }
            }
        }
        if state.overflow.is_some_and(|number| number <= repair.upto) {
            state.overflow = None;
        }
        let any = !state.owners.is_empty() || state.overflow.is_some();
        self.any.store(any, Ordering::Release);
        self.count(&state);
    }

    fn count(&self, state: &State) {
        let pending = state.owners.len() + usize::from(state.overflow.is_some());
        metrics::gauge!("cache_pending_invalidations", "cache" => self.name).set(pending as f64);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
