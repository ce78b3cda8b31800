//! Session versions: how a verifier learns, within seconds, that a user's
//! earlier access tokens no longer count.
//!
//! Auth keeps a `session_version` per user, puts it in every access token
//! (`sv`), and bumps it when the user's sessions end (logoutAll,
//! changePassword, deleteAccount, a reused refresh token). Every bump is also
//! appended to a log that auth serves as
//! `GET /.well-known/session-revocations?since=<cursor>`; each verifier reads it
//! incrementally every `REVOCATION_POLL_INTERVAL` and refuses a token whose
//! `sv` is below the user's latest version. A log entry is useful only until
//! every token it refuses has expired (`until`), so the map stays bounded.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{LEEWAY_SECS, TokenError, Viewer};

/// One bump of a user's session version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub user: Uuid,
    /// Tokens with a lower `sv` are refused.
    pub version: i64,
    /// Unix seconds after which every token this refuses has expired.
    pub until: i64,
}

/// A page of the revocation log after a cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationPage {
    /// Ask for what follows this next time.
    pub cursor: i64,
    pub revocations: Vec<Revocation>,
    /// More entries follow the cursor already.
    pub more: bool,
}

/// Where a verifier reads the revocation log: auth's endpoint over HTTP, or
/// (in auth itself) its own table.
pub trait RevocationSource: Send + Sync + 'static {
    /// Entries after `cursor` (0: from the start of what is kept).
    fn since(&self, cursor: i64) -> BoxFuture<'_, anyhow::Result<RevocationPage>>;
}

/// The log at auth's `/.well-known/session-revocations`.
pub struct HttpRevocations {
    pub url: String,
    pub client: reqwest::Client,
}

impl RevocationSource for HttpRevocations {
    fn since(&self, cursor: i64) -> BoxFuture<'_, anyhow::Result<RevocationPage>> {
        Box::pin(async move {
            let response = self.client.get(format!("{}?since={cursor}", self.url)).send().await?;
            Ok(response.error_for_status()?.json().await?)
        })
    }
}

/// Pages read in one poll at most; the rest waits for the next poll.
const MAX_PAGES_PER_POLL: usize = 100;
/// A verifier that has not loaded the log tries again at most this often on
/// behalf of requests, so a down auth is not hammered once per request.
const ON_DEMAND_RETRY: Duration = Duration::from_secs(1);
/// How often entries whose tokens have all expired are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// What one verifier knows of the log.
pub(super) struct SessionVersions {
    latest: RwLock<HashMap<Uuid, Revocation>>,
    /// Set once the log has been read to its end: before that, nothing is known
    /// of the revocations of the last access-token lifetime.
    loaded: AtomicBool,
    /// The last poll failed (for logging transitions only).
    failing: AtomicBool,
    feed: tokio::sync::Mutex<Feed>,
    source: Box<dyn RevocationSource>,
}

struct Feed {
    cursor: i64,
    last_attempt: Option<Instant>,
    last_pruned: Instant,
}

impl SessionVersions {
    pub(super) fn new(source: Box<dyn RevocationSource>) -> Self {
        Self {
            latest: RwLock::new(HashMap::new()),
            loaded: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            feed: tokio::sync::Mutex::new(Feed { cursor: 0, last_attempt: None, last_pruned: Instant::now() }),
            source,
        }
    }

    /// Refuses a token of a user whose sessions ended after it was issued. Until
    /// the log has been read once, no token can be judged: `Unavailable`.
    pub(super) async fn check(&self, viewer: &Viewer) -> Result<(), TokenError> {
        if !self.loaded.load(Ordering::Acquire) {
            self.poll_on_demand().await;
            if !self.loaded.load(Ordering::Acquire) {
                return Err(TokenError::Unavailable);
            }
        }
        match self.latest.read().expect("versions lock").get(&viewer.user_id) {
            Some(revoked) if viewer.session_version < revoked.version => Err(TokenError::Revoked),
            _ => Ok(()),
        }
    }

    /// Takes in a revocation learned another way (auth, right after committing it).
    pub(super) fn note(&self, revocation: Revocation) {
        merge(&mut self.latest.write().expect("versions lock"), [revocation]);
    }

    /// Reads what the log holds after the cursor.
    pub(super) async fn poll(&self) {
        let mut feed = self.feed.lock().await;
        self.poll_locked(&mut feed).await;
    }

    async fn poll_on_demand(&self) {
        let mut feed = self.feed.lock().await;
        // Another request's poll may have loaded it while this one waited.
        let recently = feed.last_attempt.is_some_and(|at| at.elapsed() < ON_DEMAND_RETRY);
        if self.loaded.load(Ordering::Acquire) || recently {
            return;
        }
        self.poll_locked(&mut feed).await;
    }

    async fn poll_locked(&self, feed: &mut Feed) {
        feed.last_attempt = Some(Instant::now());
        for _ in 0..MAX_PAGES_PER_POLL {
            let page = match self.source.since(feed.cursor).await {
                Ok(page) => page,
                Err(e) => {
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %format!("{e:#}"), "could not read session revocations; keeping what is known");
                    }
                    metrics::counter!("identity_refresh_failures_total", "source" => "revocations").increment(1);
                    return;
                }
            };
            if self.failing.swap(false, Ordering::Relaxed) {
                tracing::info!("session revocations readable again");
            }
            merge(&mut self.latest.write().expect("versions lock"), page.revocations);
            // As auth says, even backwards: it starts over when its log was emptied or replaced.
            feed.cursor = page.cursor;
            if !page.more {
                self.loaded.store(true, Ordering::Release);
                break;
            }
        }
        if feed.last_pruned.elapsed() >= PRUNE_EVERY {
            feed.last_pruned = Instant::now();
            let now = chrono::Utc::now().timestamp();
            self.latest.write().expect("versions lock").retain(|_, r| r.until + LEEWAY_SECS as i64 >= now);
        }
    }
}

/// Keeps each user's highest version (and the latest `until` with it).
fn merge(latest: &mut HashMap<Uuid, Revocation>, revocations: impl IntoIterator<Item = Revocation>) {
    for revocation in revocations {
        latest
            .entry(revocation.user)
            .and_modify(|known| {
                known.version = known.version.max(revocation.version);
                known.until = known.until.max(revocation.until);
            })
            .or_insert(revocation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_the_highest_version_and_the_latest_until() {
        let user = Uuid::new_v4();
        let mut latest = HashMap::new();
        merge(&mut latest, [Revocation { user, version: 3, until: 100 }, Revocation { user, version: 2, until: 200 }]);
        assert_eq!(latest[&user], Revocation { user, version: 3, until: 200 });
    }
}
