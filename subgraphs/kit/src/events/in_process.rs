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
//! A failing subscriber is retried with backoff, up to its subscription's
//! `max_attempts`; then, or at once for a malformed event, the event is
//! dead-lettered for that subscriber: an error log line and
//! `events_consumed_total{outcome="dead_lettered"}`; the event stays readable in
//! the producer's outbox table. Attempts are counted in memory, so a restart
//! gives a poison event a fresh set of attempts (as a bounded, logged cost).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use uuid::Uuid;

use super::consumer::{Core, MAX_RETRY_DELAY, MIN_BACKOFF, Outcome};

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
    dead_lettered: bool,
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
        let queues: Vec<String> = self.read_subscribers().iter().map(|s| s.core.subscription.queue.clone()).collect();
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
        self.read_subscribers().iter().map(|s| s.core.subscription.queue.clone()).collect()
    }

    /// Hands one event to every subscriber bound to `routing_key`; see the module docs.
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
        let mut retry_at: Option<Instant> = None;
        for subscriber in &subscribers {
            if let Some(at) = self.deliver_to(subscriber, event_id, routing_key, body).await {
                retry_at = Some(retry_at.map_or(at, |earliest| earliest.min(at)));
            }
        }
        match retry_at {
            Some(at) => Delivery::RetryAt(at),
            None => {
                let mut attempts = self.lock_attempts();
                for subscriber in &subscribers {
                    attempts.remove(&(event_id, subscriber.core.subscription.queue.clone()));
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
        routing_key: &str,
        body: &[u8],
    ) -> Option<Instant> {
        let subscription = &subscriber.core.subscription;
        let key = (event_id, subscription.queue.clone());
        let now = Instant::now();
        {
            let attempts = self.lock_attempts();
            if let Some(previous) = attempts.get(&key) {
                if previous.dead_lettered {
                    return None;
                }
                if let Some(at) = previous.not_before.filter(|at| *at > now) {
                    return Some(at);
                }
            }
        }
        if subscriber.stopped.load(Ordering::SeqCst) {
            // Its service is shutting down: the row stays pending for the next start.
            return Some(now + MAX_RETRY_DELAY);
        }
        let outcome = subscriber.core.process(body).await;
        let mut attempts = self.lock_attempts();
        let (recorded, retry_at) = match outcome {
            Outcome::Processed | Outcome::Duplicate => {
                attempts.remove(&key);
                (outcome, None)
            }
            Outcome::Malformed => {
                attempts.entry(key).or_default().dead_lettered = true;
                tracing::error!(%event_id, queue = %subscription.queue, routing_key, "unusable event; dead-lettered (it stays in the outbox)");
                (Outcome::Malformed, None)
            }
            Outcome::Failed => {
                let entry = attempts.entry(key).or_default();
                entry.failures += 1;
                if entry.failures >= subscription.max_attempts {
                    entry.dead_lettered = true;
                    tracing::error!(%event_id, queue = %subscription.queue, routing_key, attempts = entry.failures, "event kept failing; dead-lettered (it stays in the outbox)");
                    // Reported as RabbitMQ's dead-lettering would be: the event left the queue.
                    (Outcome::Malformed, None)
                } else {
                    let pause = (MIN_BACKOFF * 2u32.saturating_pow(entry.failures)).min(MAX_RETRY_DELAY);
                    let at = now + pause;
                    entry.not_before = Some(at);
                    (Outcome::Failed, Some(at))
                }
            }
        };
        metrics::counter!(
            "events_consumed_total",
            "routing_key" => routing_key.to_owned(),
            "outcome" => recorded.as_str(),
        )
        .increment(1);
        retry_at
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
