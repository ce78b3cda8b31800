//! bcrypt hashing off the async runtime, a bounded number at a time, on
//! blocking threads that run at a lower CPU priority: a login storm then takes
//! only the CPU that request handling leaves over, and cannot stall it.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Passwords {
    cost: u32,
    permits: Arc<Semaphore>,
    /// Verified against when the email is unknown, so both failures cost the same.
    dummy_hash: Arc<str>,
}

impl Passwords {
    pub async fn new(cost: u32, max_concurrent: usize) -> anyhow::Result<Self> {
        let dummy = tokio::task::spawn_blocking(move || bcrypt::hash("dummy password for timing", cost))
            .await
            .context("bcrypt task panicked")??;
        Ok(Self { cost, permits: Arc::new(Semaphore::new(max_concurrent)), dummy_hash: dummy.into() })
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let cost = self.cost;
        self.blocking(move || bcrypt::hash(password, cost).context("hashing a password")).await
    }

    /// Checks `password` against `hash`, or against a dummy hash when there is
    /// none, so an unknown account takes as long as a wrong password.
    pub async fn verify(&self, password: String, hash: Option<String>) -> anyhow::Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        // A malformed stored hash counts as a mismatch rather than an error.
        let matched = self.blocking(move || Ok(bcrypt::verify(password, &hash).unwrap_or(false))).await?;
        Ok(known && matched)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self.permits.acquire().await.context("password semaphore closed")?;
        tokio::task::spawn_blocking(move || {
            lower_thread_priority();
            work()
        })
        .await
        .context("bcrypt task panicked")?
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
        let passwords = Passwords::new(4, 2).await.unwrap();
        let hash = passwords.hash("secret password 1".into()).await.unwrap();
        assert!(passwords.verify("secret password 1".into(), Some(hash.clone())).await.unwrap());
        assert!(!passwords.verify("wrong password 1".into(), Some(hash)).await.unwrap());
        assert!(!passwords.verify("dummy password for timing".into(), None).await.unwrap());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_a_lower_priority() {
        let passwords = Passwords::new(4, 1).await.unwrap();
        let niceness = passwords
            .blocking(|| {
                // SAFETY: reading the calling thread's priority has no preconditions.
                Ok(unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::syscall(libc::SYS_gettid) as libc::id_t) })
            })
            .await
            .unwrap();
        assert_eq!(niceness, BCRYPT_NICENESS);
    }
}
