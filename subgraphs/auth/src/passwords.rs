//! Passwords: bcrypt hashing shared fairly, and a limit on wrong guesses.
//!
//! Hashing runs off the async runtime, a bounded number at a time, on blocking
//! threads at a lower CPU priority: a login storm then takes only the CPU that
//! request handling leaves over, and cannot stall it. Admission is fair and
//! bounded: one hash in flight per account, at most `BCRYPT_MAX_QUEUE` queued or
//! running in all; beyond either, the request is refused at once (RATE_LIMITED
//! with `retryAfter`) rather than queued behind others.
//!
//! Wrong guesses are charged to the account in Postgres, shared by every
//! replica ([`FailureLimit`]), before bcrypt runs.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use kit::ApiError;
use kit::db::Database;
use kit::error::ApiResult;
use tokio::sync::Semaphore;

/// What a refused admission tells the client to wait: one hash's time, rounded up.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

#[derive(Clone)]
pub struct Passwords {
    inner: Arc<Inner>,
}

struct Inner {
    cost: u32,
    permits: Semaphore,
    max_queue: usize,
    /// Accounts with a hash queued or running: at most one each, `max_queue` in all.
    in_flight: Mutex<HashSet<String>>,
    /// Verified against when the email is unknown, so both failures cost the same.
    dummy_hash: String,
    metrics: HashMetrics,
}

/// `auth_bcrypt_hashes{state}`: admitted (queued or running, what
/// `BCRYPT_MAX_QUEUE` bounds) and running (what `BCRYPT_MAX_CONCURRENCY`
/// bounds); their difference is the queue's depth.
struct HashMetrics {
    admitted: metrics::Gauge,
    running: metrics::Gauge,
    refused: metrics::Counter,
}

impl HashMetrics {
    fn new(max_concurrent: usize, max_queue: usize) -> Self {
        kit::metrics::handle();
        metrics::describe_gauge!(
            "auth_bcrypt_hashes",
            "bcrypt hashes by state: admitted (queued or running, bounded by BCRYPT_MAX_QUEUE) and running (bounded by BCRYPT_MAX_CONCURRENCY)."
        );
        metrics::describe_gauge!(
            "auth_bcrypt_hashes_limit",
            "BCRYPT_MAX_QUEUE (state admitted) and BCRYPT_MAX_CONCURRENCY (state running)."
        );
        metrics::describe_counter!(
            "auth_bcrypt_refused_total",
            "Password checks refused at once (RATE_LIMITED) because the bcrypt queue was full or the account had a hash in flight."
        );
        metrics::gauge!("auth_bcrypt_hashes_limit", "state" => "admitted").set(max_queue as f64);
        metrics::gauge!("auth_bcrypt_hashes_limit", "state" => "running").set(max_concurrent as f64);
        Self {
            admitted: metrics::gauge!("auth_bcrypt_hashes", "state" => "admitted"),
            running: metrics::gauge!("auth_bcrypt_hashes", "state" => "running"),
            refused: metrics::counter!("auth_bcrypt_refused_total"),
        }
    }
}

/// The right to hash for one account, until dropped.
pub struct Ticket {
    inner: Arc<Inner>,
    account: String,
}

impl Passwords {
    pub async fn new(cost: u32, max_concurrent: usize, max_queue: usize) -> anyhow::Result<Self> {
        let dummy_hash = tokio::task::spawn_blocking(move || bcrypt::hash("dummy password for timing", cost))
            .await
            .context("bcrypt task panicked")??;
        let inner = Inner {
            cost,
            permits: Semaphore::new(max_concurrent),
            max_queue,
            in_flight: Mutex::new(HashSet::new()),
            dummy_hash,
            metrics: HashMetrics::new(max_concurrent, max_queue),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Admits one hash (or a few, one after another) for `account`, or refuses
    /// at once: RATE_LIMITED when that account already has one in flight or the
    /// queue is full.
    pub fn admit(&self, account: &str) -> ApiResult<Ticket> {
        let mut in_flight = self.inner.in_flight.lock().expect("bcrypt admission lock");
        let refusal = if in_flight.contains(account) {
            "A password of this account is already being processed; try again shortly"
        } else if in_flight.len() >= self.inner.max_queue {
            "Too many passwords are being processed; try again shortly"
        } else {
            in_flight.insert(account.to_owned());
            self.inner.metrics.admitted.set(in_flight.len() as f64);
            return Ok(Ticket { inner: self.inner.clone(), account: account.to_owned() });
        };
        self.inner.metrics.refused.increment(1);
        Err(ApiError::RateLimited { message: refusal.to_owned(), retry_after: BUSY_RETRY_AFTER_SECS })
    }
}

impl Ticket {
    pub async fn hash(&self, password: String) -> ApiResult<String> {
        let cost = self.inner.cost;
        Ok(self.blocking(move || bcrypt::hash(password, cost).context("hashing a password")).await?)
    }

    /// Checks `password` against `hash`, or against a dummy hash when there is
    /// none, so an unknown account takes as long as a wrong password.
    pub async fn verify(&self, password: String, hash: Option<String>) -> ApiResult<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.inner.dummy_hash.clone());
        // A malformed stored hash counts as a mismatch rather than an error.
        let matched = self.blocking(move || Ok(bcrypt::verify(password, &hash).unwrap_or(false))).await?;
        Ok(known && matched)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self.inner.permits.acquire().await.context("password semaphore closed")?;
        let running = &self.inner.metrics.running;
        running.increment(1.0);
        let done = tokio::task::spawn_blocking(move || {
            lower_thread_priority();
            work()
        })
        .await;
        running.decrement(1.0);
        done.context("bcrypt task panicked")?
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut in_flight = self.inner.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        in_flight.remove(&self.account);
        self.inner.metrics.admitted.set(in_flight.len() as f64);
    }
}

/// At most `failures` password checks per account per `window` that do not
/// end in success (`PASSWORD_FAILURE_LIMIT`), counted in Postgres so every
/// replica shares them. An attempt is charged *before* bcrypt runs, in one
/// atomic statement, so concurrent guesses cannot slip past the count; a
/// correct password clears it. Over the limit, an account answers RATE_LIMITED
/// until its window ends, without running bcrypt.
///
/// The window is fixed and short, and never extended by refused attempts, so
/// a stranger who knows an email can keep its owner from signing in anew only
/// while they keep guessing, and for at most one window after; sessions already
/// signed in are untouched (tokens keep refreshing). Accounts are keyed by their
/// normalised email, known or not, so the limit does not tell which emails exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit {
    pub failures: u32,
    pub window: Duration,
}

impl FailureLimit {
    /// Charges one attempt to `email`, or refuses it: RATE_LIMITED with the seconds left in the window.
    pub async fn charge(&self, database: &Database, email: &str) -> ApiResult<()> {
        let (attempts, seconds_left): (i32, f64) = sqlx::query_as(
            "INSERT INTO auth.password_failures AS f (email, failures, window_started_at)
             VALUES ($1, 1, now())
             ON CONFLICT (email) DO UPDATE SET
                 failures = CASE WHEN f.window_started_at <= now() - make_interval(secs => $2)
                                 THEN 1 ELSE f.failures + 1 END,
                 window_started_at = CASE WHEN f.window_started_at <= now() - make_interval(secs => $2)
                                          THEN now() ELSE f.window_started_at END
             RETURNING failures,
                       extract(epoch FROM window_started_at + make_interval(secs => $2) - now())::float8",
        )
        .bind(email)
        .bind(self.window.as_secs_f64())
        .fetch_one(database)
        .await?;
        if attempts <= i32::try_from(self.failures).unwrap_or(i32::MAX) {
            return Ok(());
        }
        let retry_after = seconds_left.ceil().max(1.0) as u64;
        Err(ApiError::RateLimited {
            message: format!("Too many wrong passwords for this account; try again in {retry_after} s"),
            retry_after,
        })
    }

    /// Clears `email`'s count after a correct password.
    pub async fn clear(&self, database: &Database, email: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM auth.password_failures WHERE email = $1").bind(email).execute(database).await?;
        Ok(())
    }

    /// Removes counts whose window has ended.
    pub async fn prune(&self, database: &Database) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM auth.password_failures WHERE window_started_at <= now() - make_interval(secs => $1)",
        )
        .bind(self.window.as_secs_f64())
        .execute(database)
        .await?;
        Ok(done.rows_affected())
    }
}

/// Niceness of threads that have hashed a password. Only bcrypt runs on this
/// service's blocking threads, so they keep it (an unprivileged process could
/// not raise it back anyway).
#[cfg(target_os = "linux")]
const BCRYPT_NICENESS: libc::c_int = 10;

#[cfg(target_os = "linux")]
fn lower_thread_priority() {
    thread_local! {
        static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    LOWERED.with(|lowered| {
        if !lowered.get() {
            // SAFETY: gettid and setpriority on the calling thread have no memory-safety preconditions.
            let result = unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, BCRYPT_NICENESS)
            };
            if result != 0 {
                tracing::debug!("could not lower the priority of a bcrypt thread");
            }
            lowered.set(true);
        }
    });
}

#[cfg(not(target_os = "linux"))]
fn lower_thread_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_never_match() {
        let passwords = Passwords::new(4, 2, 8).await.unwrap();
        let ticket = passwords.admit("a@example.com").unwrap();
        let hash = ticket.hash("secret password 1".into()).await.unwrap();
        assert!(ticket.verify("secret password 1".into(), Some(hash.clone())).await.unwrap());
        assert!(!ticket.verify("wrong password 1".into(), Some(hash)).await.unwrap());
        assert!(!ticket.verify("dummy password for timing".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn one_hash_per_account_and_a_bounded_queue_else_refused_at_once() {
        let passwords = Passwords::new(4, 1, 2).await.unwrap();
        let first = passwords.admit("a@example.com").unwrap();
        let again = passwords.admit("a@example.com").err().expect("one in flight per account");
        assert!(matches!(again, ApiError::RateLimited { retry_after: 1, .. }), "{again:?}");
        let _second = passwords.admit("b@example.com").unwrap();
        let full = passwords.admit("c@example.com").err().expect("the queue holds two");
        assert!(matches!(full, ApiError::RateLimited { .. }), "{full:?}");
        drop(first);
        assert!(passwords.admit("a@example.com").is_ok(), "a dropped ticket frees its account and its place");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_a_lower_priority() {
        let passwords = Passwords::new(4, 1, 1).await.unwrap();
        let niceness = passwords
            .admit("a@example.com")
            .unwrap()
            .blocking(|| {
                // SAFETY: reading the calling thread's priority has no preconditions.
                Ok(unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::syscall(libc::SYS_gettid) as libc::id_t) })
            })
            .await
            .unwrap();
        assert_eq!(niceness, BCRYPT_NICENESS);
    }
}
