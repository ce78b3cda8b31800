//! The in-process event bus: for one process that hosts every producer and
//! consumer of its events (the monolith), in place of RabbitMQ.
//!
//! The outbox stays the durable queue. The relay hands each committed outbox
//! row to every in-process subscriber whose binding matches its routing key,
//! and marks the row published only once each of them has settled it: handled
//! and committed (or found it already handled: `processed_events`), or given up
//! on it (dead-lettered). A crash at any point leaves the row pending, and the
//! next start delivers it again; consumers deduplicate on `eventId`, so a
//! subscriber that had already committed skips it. Nothing is lost and nothing
//! is applied twice.
//!
//! A subscriber that fails transiently (its database away) is retried with
//! capped, jittered exponential backoff (its `max_backoff`) for as long as it
//! fails, and the row stays pending meanwhile. The others are not made to
//! wait for it: they are handed each event concurrently with it, and are
//! handed later rows while it still owes earlier ones (an attempt that hangs
//! does delay the relay's pass, up to the pool's acquire timeout). A poison event (malformed, or refused by the
//! handler as [`super::consumer::Poison`]) is dead-lettered for that subscriber
//! at once: an error log line and `events_dead_lettered_total{queue}`; the event
//! stays readable in the producer's outbox table. What each subscriber settled
//! is remembered in memory only until every subscriber has: after a restart the
//! ones that had committed skip it as a duplicate.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::backoff;
use super::consumer::{Core, Outcome, count_dead_lettered};

/// When an event owed to a stopping subscriber is offered again.
const STOPPED_RETRY: Duration = Duration::from_secs(5);

/// A bus shared by the relays and consumers of one process. Cloning shares it.
#[derive(Clone, Default)]
pub struct InProcessBus {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    subscribers: RwLock<Vec<Subscriber>>,
    /// Per event and subscriber queue, for events not yet settled by everyone.
    attempts: Mutex<HashMap<(Uuid, String), Attempts>>,
}

#[derive(Clone)]
struct Subscriber {
    core: Arc<Core>,
    stopped: Arc<AtomicBool>,
}

#[derive(Debug, Default)]
struct Attempts {
    failures: u32,
    not_before: Option<Instant>,
    /// Handled (or dead-lettered) by this subscriber; others still owe it.
    settled: bool,
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Every matching subscriber handled it or gave up on it: the row may be marked published.
    Settled,
    /// Some subscriber still owes it; deliver it again from this instant.
    RetryAt(Instant),
}

impl fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queues: Vec<String> =
            self.read_subscribers().iter().map(|s| s.core.subscription.queue().to_owned()).collect();
        f.debug_struct("InProcessBus").field("queues", &queues).finish()
    }
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn subscribe(&self, core: Arc<Core>, stopped: Arc<AtomicBool>) {
        let mut subscribers = self.inner.subscribers.write().unwrap_or_else(|e| e.into_inner());
        subscribers.push(Subscriber { core, stopped });
    }

    /// Queue names of the subscribers (diagnostics and tests).
    pub fn queues(&self) -> Vec<String> {
        self.read_subscribers().iter().map(|s| s.core.subscription.queue().to_owned()).collect()
    }

    /// Hands one event to every subscriber bound to `routing_key`, concurrently;
    /// see the module docs.
    pub async fn deliver(&self, event_id: Uuid, routing_key: &str, body: &[u8]) -> Delivery {
        let subscribers: Vec<Subscriber> = self
            .read_subscribers()
            .iter()
            .filter(|s| topic_matches(&s.core.subscription.routing_key, routing_key))
            .cloned()
            .collect();
        if subscribers.is_empty() {
            // As RabbitMQ with no queue bound: nobody wants it. The row stays in the outbox.
            tracing::debug!(%event_id, routing_key, "no in-process subscriber for this event");
        }
        // The relay's span of this hand-over: each subscriber's handling becomes its child.
        let hop = crate::telemetry::current_traceparent();
        let deliveries = subscribers.iter().map(|s| self.deliver_to(s, event_id, body, hop.as_deref()));
        let owed = futures::future::join_all(deliveries).await;
        match owed.into_iter().flatten().min() {
            Some(at) => Delivery::RetryAt(at),
            None => {
                let mut attempts = self.lock_attempts();
                for subscriber in &subscribers {
                    attempts.remove(&(event_id, subscriber.core.subscription.queue().to_owned()));
                }
                Delivery::Settled
            }
        }
    }

    /// `None` once this subscriber has settled the event; else when to try again.
    async fn deliver_to(
        &self,
        subscriber: &Subscriber,
        event_id: Uuid,
        body: &[u8],
        hop: Option<&str>,
    ) -> Option<Instant> {
        let subscription = &subscriber.core.subscription;
        let key = (event_id, subscription.queue().to_owned());
        let now = Instant::now();
        if let Some(previous) = self.lock_attempts().get(&key) {
            if previous.settled {
                return None;
            }
            if let Some(at) = previous.not_before.filter(|at| *at > now) {
                return Some(at);
            }
        }
        if subscriber.stopped.load(Ordering::SeqCst) {
            // Its service is shutting down: the row stays pending for the next start.
            return Some(now + STOPPED_RETRY);
        }
        let outcome = subscriber.core.process(body, hop).await;
        let mut attempts = self.lock_attempts();
        let entry = attempts.entry(key).or_default();
        match outcome {
            Outcome::Processed | Outcome::Duplicate => {
                entry.settled = true;
                None
            }
            Outcome::Malformed => {
                entry.settled = true;
                tracing::error!(%event_id, queue = %subscription.queue(), "unusable event; dead-lettered (it stays in the outbox)");
                count_dead_lettered(subscription.queue());
                None
            }
            Outcome::Failed => {
                entry.failures += 1;
                let at = Instant::now() + backoff(entry.failures, subscription.settings.max_backoff);
                entry.not_before = Some(at);
                Some(at)
            }
        }
    }

    fn read_subscribers(&self) -> std::sync::RwLockReadGuard<'_, Vec<Subscriber>> {
        self.inner.subscribers.read().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_attempts(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, String), Attempts>> {
        self.inner.attempts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// AMQP topic matching: words separated by `.`, `*` matches one word, `#` zero or more.
pub fn topic_matches(binding: &str, routing_key: &str) -> bool {
    fn matches(pattern: &[&str], key: &[&str]) -> bool {
        match (pattern.split_first(), key.split_first()) {
            (None, None) => true,
            (Some((&"#", rest)), _) => matches(rest, key) || (!key.is_empty() && matches(pattern, &key[1..])),
            (Some((&"*", rest)), Some((_, key_rest))) => matches(rest, key_rest),
            (Some((word, rest)), Some((key_word, key_rest))) => word == key_word && matches(rest, key_rest),
            _ => false,
        }
    }
    let pattern: Vec<&str> = binding.split('.').collect();
    let key: Vec<&str> = routing_key.split('.').collect();
    matches(&pattern, &key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_bindings_match_as_in_rabbitmq() {
        assert!(topic_matches("user.deleted", "user.deleted"));
        assert!(!topic_matches("user.deleted", "user.created"));
        assert!(topic_matches("user.*", "user.deleted"));
        assert!(!topic_matches("user.*", "user.deleted.v2"));
        assert!(topic_matches("user.#", "user.deleted.v2"));
        assert!(topic_matches("user.#", "user"));
        assert!(topic_matches("#", "anything.at.all"));
        assert!(!topic_matches("task.*", "user.deleted"));
    }
}
