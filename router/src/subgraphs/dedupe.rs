//! In-flight deduplication: identical work asked for while the same work is
//! already running waits for that one's outcome instead of doing it again.
//! Used twice: by the subgraph client (identical query fetches share one
//! exchange) and by the pipeline (identical client queries share one execution).
//!
//! A key is the exact bytes of everything that can change the answer; its hash
//! (random keys per process, so collisions cannot be aimed) finds the call in
//! flight, and the bytes must then be equal too: a hash alone could hand one
//! user's answer to another. A second key with the same hash but other bytes is
//! simply not deduplicated. The first caller of a key leads: it runs the work
//! and hands a clone of the outcome to whoever joined meanwhile. A leader that
//! is dropped (its client went away, its request timed out) drops the waiters'
//! channels with it; each then tries again, one of them leading.
//!
//! The lock is held only to look up, insert or remove, never across an await,
//! and without a duplicate nothing is allocated but the key itself.

use std::collections::hash_map::Entry;
use std::hash::BuildHasher;
use std::sync::Mutex;

use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

/// Calls in flight by key, each with the channels of those waiting for it.
pub struct Inflight<V> {
    /// By the key's hash: already random, so the map's own hashing can be the cheapest.
    calls: Mutex<FxHashMap<u64, Call<V>>>,
    hasher: foldhash::fast::RandomState,
}

struct Call<V> {
    key: Vec<u8>,
    waiters: Vec<oneshot::Sender<V>>,
}

/// What a caller of [`Inflight::join`] is to do.
pub enum Role<'a, V: Clone> {
    /// Run the work and [`Leader::finish`] with its outcome.
    Leader(Leader<'a, V>),
    /// Wait for the leader's outcome; the key is given back, to join again
    /// should the leader go away (see [`Inflight::run`]).
    Follower(oneshot::Receiver<V>, Vec<u8>),
    /// The same hash is in flight for another key: run the work, share nothing.
    Alone,
}

/// The right and duty to hand the outcome to the waiters; dropped unfinished,
/// it lets them go (they try again).
pub struct Leader<'a, V> {
    inflight: &'a Inflight<V>,
    hash: u64,
    done: bool,
}

impl<V> std::fmt::Debug for Inflight<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflight").finish_non_exhaustive()
    }
}

impl<V: Clone> Default for Inflight<V> {
    fn default() -> Self {
        Self { calls: Mutex::new(FxHashMap::default()), hasher: foldhash::fast::RandomState::default() }
    }
}

impl<V: Clone> Inflight<V> {
    /// Leads the call of `key` if none is in flight, else follows it.
    pub fn join(&self, key: Vec<u8>) -> Role<'_, V> {
        let hash = self.hasher.hash_one(key.as_slice());
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        match calls.entry(hash) {
            Entry::Occupied(call) if call.get().key == key => {
                let (sender, receiver) = oneshot::channel();
                call.into_mut().waiters.push(sender);
                Role::Follower(receiver, key)
            }
            Entry::Occupied(_) => Role::Alone,
            Entry::Vacant(slot) => {
                slot.insert(Call { key, waiters: Vec::new() });
                Role::Leader(Leader { inflight: self, hash, done: false })
            }
        }
    }

    /// `work`'s outcome, run here or by the caller already running it for
    /// `key`; `joined` is called each time this caller follows another.
    pub async fn run<F, Fut>(&self, key: Vec<u8>, work: F, joined: impl Fn()) -> V
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = V>,
    {
        let leader = match self.lead_or_follow(key, joined).await {
            Ok(leader) => leader,
            Err(outcome) => return outcome,
        };
        let outcome = work().await;
        if let Some(leader) = leader {
            leader.finish(&outcome);
        }
        outcome
    }

    /// The leader's outcome when another caller runs `key` (`Err`), else the
    /// duty to run it: leading (`Ok(Some)`), or alone when another key has
    /// the same hash (`Ok(None)`). Each time a leader goes away unfinished,
    /// its followers join again; `joined` is called each time this one follows.
    pub async fn lead_or_follow(&self, key: Vec<u8>, joined: impl Fn()) -> Result<Option<Leader<'_, V>>, V> {
        let mut key = key;
        loop {
            match self.join(key) {
                Role::Leader(leader) => return Ok(Some(leader)),
                Role::Alone => return Ok(None),
                Role::Follower(receiver, returned) => {
                    joined();
                    match receiver.await {
                        Ok(outcome) => return Err(outcome),
                        Err(_) => key = returned,
                    }
                }
            }
        }
    }

    /// Calls in flight (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.calls.lock().expect("dedupe lock").len()
    }
}

impl<V: Clone> Leader<'_, V> {
    /// Hands `outcome` to every waiter and ends the call: later callers lead anew.
    pub fn finish(mut self, outcome: &V) {
        self.done = true;
        for waiter in self.take_waiters() {
            // A waiter that went away has no use for it.
            let _ = waiter.send(outcome.clone());
        }
    }

    fn take_waiters(&self) -> Vec<oneshot::Sender<V>> {
        let mut calls = self.inflight.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.remove(&self.hash).map(|call| call.waiters).unwrap_or_default()
    }
}

impl<V> Drop for Leader<'_, V> {
    fn drop(&mut self) {
        if !self.done {
            // Removed under the lock, dropped outside it: each waiter's channel
            // closes, and it tries again.
            let mut calls = self.inflight.calls.lock().unwrap_or_else(|e| e.into_inner());
            let call = calls.remove(&self.hash);
            drop(calls);
            drop(call);
        }
    }
}

/// Appends `bytes` to a key, its length first, so that no two sequences of
/// fields make the same key.
pub fn push_field(key: &mut Vec<u8>, bytes: &[u8]) {
    key.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    key.extend_from_slice(bytes);
}

/// Appends every header but the correlation ones (see [`CORRELATION_HEADERS`]),
/// name and value, in their order.
pub fn push_headers(key: &mut Vec<u8>, headers: &axum::http::HeaderMap) {
    for (name, value) in headers {
        if CORRELATION_HEADERS.contains(&name.as_str()) {
            continue;
        }
        push_field(key, name.as_str().as_bytes());
        push_field(key, value.as_bytes());
    }
}

/// Headers that name a request, not what it asks: `x-request-id` (the router
/// gives every request one of its own) and the trace context. Keyed on, no two
/// requests would ever share; a shared exchange carries the leader's.
pub const CORRELATION_HEADERS: [&str; 3] = ["x-request-id", "traceparent", "tracestate"];

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Notify;

    use super::*;

    #[tokio::test]
    async fn a_second_caller_of_the_same_key_waits_for_the_first_callers_outcome() {
        let inflight = Inflight::<u32>::default();
        let Role::Leader(leader) = inflight.join(b"k".to_vec()) else { panic!("the first caller leads") };
        let Role::Follower(follower, _) = inflight.join(b"k".to_vec()) else { panic!("the second follows") };
        assert!(matches!(inflight.join(b"other".to_vec()), Role::Leader(_)), "another key leads on its own");
        leader.finish(&7);
        assert_eq!(follower.await.unwrap(), 7);
        assert_eq!(inflight.len(), 0, "a finished call is forgotten");
        assert!(matches!(inflight.join(b"k".to_vec()), Role::Leader(_)), "a later caller runs again");
    }

    #[tokio::test]
    async fn followers_of_a_dropped_leader_are_let_go_and_run_again() {
        let inflight = Arc::new(Inflight::<u32>::default());
        let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let runs = Arc::new(AtomicUsize::new(0));
        let work = |answer: u32| {
            let (started, release, runs) = (started.clone(), release.clone(), runs.clone());
            move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                started.notify_one();
                release.notified().await;
                answer
            }
        };
        let leader = tokio::spawn({
            let (inflight, work) = (inflight.clone(), work(1));
            async move { inflight.run(b"k".to_vec(), work, || {}).await }
        });
        started.notified().await;
        let joined = Arc::new(AtomicUsize::new(0));
        let follower = tokio::spawn({
            let (inflight, work, joined) = (inflight.clone(), work(2), joined.clone());
            async move { inflight.run(b"k".to_vec(), work, move || _ = joined.fetch_add(1, Ordering::SeqCst)).await }
        });
        while inflight.calls.lock().unwrap().get(&inflight.hasher.hash_one(b"k".as_slice())).unwrap().waiters.is_empty()
        {
            tokio::task::yield_now().await;
        }
        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled());
        // The follower now leads a run of its own.
        started.notified().await;
        release.notify_one();
        assert_eq!(follower.await.unwrap(), 2);
        assert_eq!((runs.load(Ordering::SeqCst), joined.load(Ordering::SeqCst)), (2, 1));
        assert_eq!(inflight.len(), 0);
    }

    #[tokio::test]
    async fn every_waiter_gets_the_outcome_errors_too() {
        let inflight = Inflight::<Result<u32, &'static str>>::default();
        let Role::Leader(leader) = inflight.join(b"k".to_vec()) else { panic!("leads") };
        let followers: Vec<_> = (0..3)
            .map(|_| match inflight.join(b"k".to_vec()) {
                Role::Follower(receiver, _) => receiver,
                _ => panic!("follows"),
            })
            .collect();
        leader.finish(&Err("down"));
        for follower in followers {
            assert_eq!(follower.await.unwrap(), Err("down"), "an error is shared like an answer");
        }
    }

    #[test]
    fn keys_are_unambiguous_and_leave_correlation_headers_out() {
        let (mut ab, mut a_b) = (Vec::new(), Vec::new());
        push_field(&mut ab, b"ab");
        push_field(&mut a_b, b"a");
        push_field(&mut a_b, b"b");
        assert_ne!(ab, a_b);
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("authorization", "Bearer a".parse().unwrap());
        let mut with_ids = headers.clone();
        with_ids.insert("x-request-id", "r-1".parse().unwrap());
        with_ids.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
        let (mut plain, mut traced) = (Vec::new(), Vec::new());
        push_headers(&mut plain, &headers);
        push_headers(&mut traced, &with_ids);
        assert_eq!(plain, traced);
        headers.insert("authorization", "Bearer b".parse().unwrap());
        let mut other_user = Vec::new();
        push_headers(&mut other_user, &headers);
        assert_ne!(plain, other_user, "another user's token is another key");
    }
}
