//! bcrypt hashing off the async runtime, a bounded number at a time.

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
        tokio::task::spawn_blocking(work).await.context("bcrypt task panicked")?
    }
}
