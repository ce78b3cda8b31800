//! File rows in Postgres and the life cycle of their blobs: a row is inserted
//! only after its blob is stored; a removed row queues its blob for deletion in
//! the same transaction (`files.blob_deletions`), so the blob goes even if
//! deleting it fails the first time; blobs without rows are swept after a grace
//! period. Each owner's stored bytes are counted in `files.usage` by triggers on
//! the files table; an upload locks its owner's count and is refused past the
//! storage quota. A deleted owner is tombstoned (`files.deleted_users`) and can
//! record no file again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use kit::db::Database;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::storage::Storage;

/// One stored file.
#[derive(Debug, Clone, FromRow)]
pub struct FileRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub storage_key: String,
    pub created_at: DateTime<Utc>,
}

/// A file about to be recorded: its blob is already in storage.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub storage_key: String,
}

/// Where a page starts: after the file with this creation time and id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn of(file: &FileRow) -> Self {
        Self { created_at: file.created_at, id: file.id }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.created_at.timestamp_micros(), self.id))
    }

    /// The cursor `raw` encodes, if it is one. Its time must be one Postgres
    /// holds: a crafted one outside that range is refused here, as bad input.
    pub fn decode(raw: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (micros, id) = text.split_once(':')?;
        Some(Self { created_at: kit::db::timestamp_from_micros(micros.parse().ok()?)?, id: Uuid::parse_str(id).ok()? })
    }
}

pub struct Page {
    pub files: Vec<FileRow>,
    pub has_next_page: bool,
}

/// The page statement, with or without a cursor (`$1` owner, then `$2`
/// created_at and `$3` id of the cursor, then the limit). Two statements, not
/// one with `$2 IS NULL OR ...`: a prepared statement's generic plan cannot use
/// that disjunction as a bound of the index scan, so a page would read every
/// newer file of the owner before its own, as an OFFSET does.
pub fn page_sql(after_cursor: bool) -> String {
    let (keyset, limit) = if after_cursor { ("AND (created_at, id) < ($2, $3)", "$4") } else { ("", "$2") };
    format!(
        "SELECT {COLUMNS} FROM files.files WHERE owner_id = $1 {keyset} ORDER BY created_at DESC, id DESC LIMIT {limit}"
    )
}

/// Blob keys checked against the table per query during a sweep.
const SWEEP_BATCH: usize = 500;

const COLUMNS: &str = "id, owner_id, filename, content_type, size, sha256, storage_key, created_at";

/// The constraint `files.guard_owner` names when the owner's account was deleted.
const OWNER_NOT_DELETED: &str = "files_owner_not_deleted";

/// Why files were not recorded.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error("the owner's storage quota of {quota_bytes} bytes would be exceeded")]
    OverQuota { quota_bytes: u64 },
    #[error("the owner's account was deleted")]
    OwnerDeleted,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

#[derive(Clone)]
pub struct Repository {
    database: Database,
    storage: Storage,
    /// Bytes each owner may store (`FILES_QUOTA_BYTES`).
    quota_bytes: u64,
    /// Queries made by [`Self::owned`] (tests check entity batching with it).
    owned_queries: Arc<AtomicU64>,
}

impl Repository {
    pub fn new(database: Database, storage: Storage, quota_bytes: u64) -> Self {
        Self { database, storage, quota_bytes, owned_queries: Arc::default() }
    }

    /// How many lookups by id list were made (one per entity batch).
    pub fn owned_queries(&self) -> u64 {
        self.owned_queries.load(Ordering::Relaxed)
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The pool itself, for what does without failing fast (the cascade's consumer, tests).
    pub fn pool(&self) -> &PgPool {
        self.database.pool()
    }

    /// Records files whose blobs are stored, all or none: none when they would
    /// take `owner` past the storage quota, or when `owner`'s account was
    /// deleted. First the owner's lock is taken and the tombstone checked
    /// (`files.guard_owner`; the cascade takes that lock before the usage row,
    /// so this order cannot deadlock with it). Then the owner's usage row is
    /// locked, so concurrent uploads are counted one after the other (the
    /// inserts then add their sizes to it, by trigger).
    pub async fn insert(&self, owner: Uuid, files: &[NewFile]) -> Result<Vec<FileRow>, InsertError> {
        let mut tx = self.database.begin().await.context("starting an upload's transaction")?;
        sqlx::query("SELECT files.guard_owner($1)").bind(owner).execute(&mut *tx).await.map_err(refusal)?;
        let used: i64 = sqlx::query_scalar(
            "INSERT INTO files.usage AS u (owner_id, used_bytes) VALUES ($1, 0)
             ON CONFLICT (owner_id) DO UPDATE SET used_bytes = u.used_bytes RETURNING used_bytes",
        )
        .bind(owner)
        .fetch_one(&mut *tx)
        .await
        .context("locking the owner's usage")?;
        let adding: u64 = files.iter().map(|f| f.size).sum();
        if (used as u64).saturating_add(adding) > self.quota_bytes {
            return Err(InsertError::OverQuota { quota_bytes: self.quota_bytes });
        }
        let mut rows = Vec::with_capacity(files.len());
        for file in files {
            let row = sqlx::query_as::<_, FileRow>(sqlx::AssertSqlSafe(format!(
                "INSERT INTO files.files (id, owner_id, filename, content_type, size, sha256, storage_key)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
            )))
            .bind(Uuid::now_v7())
            .bind(owner)
            .bind(&file.filename)
            .bind(&file.content_type)
            .bind(file.size as i64)
            .bind(&file.sha256)
            .bind(&file.storage_key)
            .fetch_one(&mut *tx)
            .await
            .map_err(refusal)?;
            rows.push(row);
        }
        tx.commit().await.context("committing an upload")?;
        Ok(rows)
    }

    /// Bytes `owner` may still store.
    pub async fn quota_left(&self, owner: Uuid) -> anyhow::Result<u64> {
        let used: Option<i64> = sqlx::query_scalar("SELECT used_bytes FROM files.usage WHERE owner_id = $1")
            .bind(owner)
            .fetch_optional(&self.database)
            .await?;
        Ok(self.quota_bytes.saturating_sub(used.unwrap_or(0) as u64))
    }

    /// The file, whoever owns it (the download route checks ownership itself).
    pub async fn find(&self, id: Uuid) -> anyhow::Result<Option<FileRow>> {
        Ok(sqlx::query_as::<_, FileRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM files.files WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.database)
        .await?)
    }

    /// Those of `ids` that `owner` owns, in one query.
    pub async fn owned(&self, owner: Uuid, ids: &[Uuid]) -> anyhow::Result<Vec<FileRow>> {
        self.owned_queries.fetch_add(1, Ordering::Relaxed);
        Ok(sqlx::query_as::<_, FileRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM files.files WHERE owner_id = $1 AND id = ANY($2)"
        )))
        .bind(owner)
        .bind(ids)
        .fetch_all(&self.database)
        .await?)
    }

    /// A page of `owner`'s files, newest first.
    pub async fn page(&self, owner: Uuid, first: usize, after: Option<Cursor>) -> anyhow::Result<Page> {
        let limit = first as i64 + 1;
        let statement = sqlx::query_as::<_, FileRow>(sqlx::AssertSqlSafe(page_sql(after.is_some()))).bind(owner);
        let statement = match after {
            Some(cursor) => statement.bind(cursor.created_at).bind(cursor.id).bind(limit),
            None => statement.bind(limit),
        };
        let mut files = statement.fetch_all(&self.database).await?;
        let has_next_page = files.len() > first;
        files.truncate(first);
        Ok(Page { files, has_next_page })
    }

    pub async fn count(&self, owner: Uuid) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM files.files WHERE owner_id = $1")
            .bind(owner)
            .fetch_one(&self.database)
            .await?)
    }

    pub async fn rename(&self, owner: Uuid, id: Uuid, filename: &str) -> anyhow::Result<Option<FileRow>> {
        Ok(sqlx::query_as::<_, FileRow>(sqlx::AssertSqlSafe(format!(
            "UPDATE files.files SET filename = $3 WHERE id = $1 AND owner_id = $2 RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(owner)
        .bind(filename)
        .fetch_optional(&self.database)
        .await?)
    }

    /// Deletes the row and then its blob; `false` when `owner` has no such file.
    pub async fn delete(&self, owner: Uuid, id: Uuid) -> anyhow::Result<bool> {
        let mut tx = self.database.begin().await?;
        let keys: Vec<String> = sqlx::query_scalar(
            "WITH gone AS (DELETE FROM files.files WHERE id = $1 AND owner_id = $2 RETURNING storage_key)
             INSERT INTO files.blob_deletions (storage_key) SELECT storage_key FROM gone
             ON CONFLICT DO NOTHING RETURNING storage_key",
        )
        .bind(id)
        .bind(owner)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        if keys.is_empty() {
            return Ok(false);
        }
        self.delete_blobs(&keys).await;
        Ok(true)
    }

    /// Deletes these queued blobs, dequeuing each one that is gone. Failures stay
    /// queued for [`Self::retry_blob_deletions`].
    pub async fn delete_blobs(&self, keys: &[String]) -> usize {
        let mut deleted = 0;
        for key in keys {
            let outcome = self.storage.delete(key).await;
            let result = match &outcome {
                Ok(()) => sqlx::query("DELETE FROM files.blob_deletions WHERE storage_key = $1")
                    .bind(key)
                    .execute(&self.database)
                    .await
                    .map(|_| ()),
                Err(e) => sqlx::query(
                    "UPDATE files.blob_deletions SET attempts = attempts + 1, last_error = $2 WHERE storage_key = $1",
                )
                .bind(key)
                .bind(format!("{e:#}"))
                .execute(&self.database)
                .await
                .map(|_| ()),
            };
            match (outcome, result) {
                (Ok(()), Ok(())) => deleted += 1,
                (Err(e), _) => {
                    tracing::warn!(storage_key = %key, error = %format!("{e:#}"), "blob deletion failed; will retry")
                }
                (Ok(()), Err(e)) => tracing::warn!(storage_key = %key, error = %e, "could not dequeue a deleted blob"),
            }
        }
        deleted
    }

    /// Retries queued blob deletions (oldest first, a bounded batch); returns how many went.
    pub async fn retry_blob_deletions(&self, batch: i64) -> anyhow::Result<usize> {
        let keys: Vec<String> =
            sqlx::query_scalar("SELECT storage_key FROM files.blob_deletions ORDER BY requested_at LIMIT $1")
                .bind(batch)
                .fetch_all(&self.database)
                .await?;
        Ok(self.delete_blobs(&keys).await)
    }

    pub async fn pending_blob_deletions(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM files.blob_deletions").fetch_one(&self.database).await?)
    }

    /// Removes blobs that have no row and were last written more than `grace` ago
    /// (an upload in flight has a blob and no row yet). Returns how many went.
    pub async fn sweep_orphans(&self, grace: Duration) -> anyhow::Result<usize> {
        let cutoff = Utc::now() - chrono::Duration::from_std(grace).context("grace period")?;
        let mut candidates = self
            .storage
            .list()
            .filter_map(|entry| async move {
                match entry {
                    Ok((key, modified)) if modified < cutoff => Some(Ok(key)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                }
            })
            .boxed();
        let mut removed = 0;
        let mut batch = Vec::new();
        while let Some(key) = candidates.next().await.transpose()? {
            batch.push(key);
            if batch.len() == SWEEP_BATCH {
                removed += self.remove_unreferenced(std::mem::take(&mut batch)).await?;
            }
        }
        if !batch.is_empty() {
            removed += self.remove_unreferenced(batch).await?;
        }
        removed += self.storage.sweep_staging(cutoff).await?;
        Ok(removed)
    }

    async fn remove_unreferenced(&self, keys: Vec<String>) -> anyhow::Result<usize> {
        let referenced: Vec<String> =
            sqlx::query_scalar("SELECT storage_key FROM files.files WHERE storage_key = ANY($1)")
                .bind(&keys)
                .fetch_all(&self.database)
                .await?;
        let mut removed = 0;
        for key in keys.iter().filter(|k| !referenced.contains(k)) {
            match self.storage.delete(key).await {
                Ok(()) => {
                    tracing::info!(storage_key = %key, "removed an orphaned blob");
                    removed += 1;
                }
                Err(e) => {
                    tracing::warn!(storage_key = %key, error = %format!("{e:#}"), "could not remove an orphaned blob")
                }
            }
        }
        Ok(removed)
    }
}

/// The insert error for a deleted owner, or the failure it is.
fn refusal(error: sqlx::Error) -> InsertError {
    match &error {
        sqlx::Error::Database(db) if db.constraint() == Some(OWNER_NOT_DELETED) => InsertError::OwnerDeleted,
        _ => InsertError::Failed(anyhow::Error::new(error).context("recording an upload")),
    }
}

/// The deletion cascade, inside its transaction: tombstones `owner`, so no
/// file can be recorded for them again, and removes every file of theirs,
/// queuing their blobs for deletion; returns the queued keys. The owner's lock
/// comes first (exclusive; uploads take it shared, see `files.guard_owner`), so
/// an upload in flight commits before the DELETE's snapshot is taken and goes
/// with the rest, and a later one sees the tombstone.
pub async fn retire_owner(tx: &mut PgConnection, owner: Uuid) -> anyhow::Result<Vec<String>> {
    sqlx::query("SELECT pg_advisory_xact_lock(files.owner_lock_key($1))").bind(owner).execute(&mut *tx).await?;
    sqlx::query("INSERT INTO files.deleted_users (owner_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    Ok(sqlx::query_scalar(
        "WITH gone AS (DELETE FROM files.files WHERE owner_id = $1 RETURNING storage_key)
         INSERT INTO files.blob_deletions (storage_key) SELECT storage_key FROM gone
         ON CONFLICT DO NOTHING RETURNING storage_key",
    )
    .bind(owner)
    .fetch_all(&mut *tx)
    .await?)
}
