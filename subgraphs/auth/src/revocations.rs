//! Ending a user's sessions everywhere: the user's session version is bumped
//! and the bump appended to a log that every verifier reads (the router's,
//! each subgraph's, and this service's own; see `kit::identity::revocations`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use kit::db::Database;
use kit::identity::{Revocation, RevocationPage, RevocationSource};
use sqlx::PgConnection;
use uuid::Uuid;

/// Entries served in one page.
const PAGE: i64 = 1000;
/// Entries are kept this long past the lifetime of the tokens they refuse.
const KEPT_PAST_TTL: Duration = Duration::from_secs(60);

/// The log of session version bumps, as verifiers read it.
#[derive(Clone)]
pub struct RevocationLog {
    database: Database,
    /// An entry refuses only tokens issued before it, so it matters for one access-token lifetime.
    access_ttl: Duration,
}

#[derive(sqlx::FromRow)]
struct Entry {
    seq: i64,
    user_id: Uuid,
    version: i64,
    revoked_at: DateTime<Utc>,
}

impl RevocationLog {
    pub fn new(database: Database, access_ttl: Duration) -> Self {
        Self { database, access_ttl }
    }

    /// Entries after `since`, oldest first. A cursor beyond the log's end (the
    /// log was emptied by pruning, or the database replaced) reads from the start.
    pub async fn page(&self, since: i64) -> Result<RevocationPage, sqlx::Error> {
        let mut conn = self.database.acquire().await?;
        let last: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM auth.session_revocations")
            .fetch_one(&mut *conn)
            .await?;
        let since = if since > last { 0 } else { since };
        let mut entries: Vec<Entry> = sqlx::query_as(
            "SELECT seq, user_id, version, revoked_at FROM auth.session_revocations
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(since)
        .bind(PAGE + 1)
        .fetch_all(&mut *conn)
        .await?;
        let more = entries.len() as i64 > PAGE;
        entries.truncate(PAGE as usize);
        let cursor = entries.last().map_or(since, |e| e.seq);
        let revocations = entries.iter().map(|e| self.revocation(e.user_id, e.version, e.revoked_at)).collect();
        Ok(RevocationPage { cursor, revocations, more })
    }

    fn revocation(&self, user: Uuid, version: i64, revoked_at: DateTime<Utc>) -> Revocation {
        Revocation { user, version, until: revoked_at.timestamp() + self.access_ttl.as_secs() as i64 }
    }

    /// Bumps the user's session version and logs the bump, in the caller's
    /// transaction. `None`: no such user.
    ///
    /// The table lock makes log order commit order (a verifier's cursor never
    /// passes a row that commits later), and it must be the transaction's
    /// first lock: every transaction here takes the log, then the user's row,
    /// then refresh tokens, so none waits on another in a cycle. The time is
    /// taken after the user's row is locked, so it is no earlier than any
    /// token issued at the old version (those take the row `FOR SHARE`).
    pub async fn end_sessions(&self, tx: &mut PgConnection, user_id: Uuid) -> Result<Option<Revocation>, sqlx::Error> {
        sqlx::query("LOCK TABLE auth.session_revocations IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
        let bumped: Option<(i64, DateTime<Utc>)> = sqlx::query_as(
            "WITH bumped AS (
                 UPDATE auth.users SET session_version = session_version + 1 WHERE id = $1
                 RETURNING id, session_version
             )
             INSERT INTO auth.session_revocations (user_id, version, revoked_at)
             SELECT id, session_version, clock_timestamp() FROM bumped
             RETURNING version, revoked_at",
        )
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        Ok(bumped.map(|(version, revoked_at)| self.revocation(user_id, version, revoked_at)))
    }

    /// Removes entries whose tokens have all expired.
    pub async fn prune(&self) -> Result<u64, sqlx::Error> {
        let horizon = Utc::now() - (self.access_ttl + KEPT_PAST_TTL);
        let done = sqlx::query("DELETE FROM auth.session_revocations WHERE revoked_at < $1")
            .bind(horizon)
            .execute(&self.database)
            .await?;
        Ok(done.rows_affected())
    }
}

impl RevocationSource for RevocationLog {
    fn since(&self, cursor: i64) -> BoxFuture<'_, anyhow::Result<RevocationPage>> {
        Box::pin(async move { Ok(self.page(cursor).await?) })
    }
}
