//! What resolvers call: the store behind the Redis cache, with every write
//! invalidating the owner's cached reads once it has committed.

use std::sync::Arc;

use kit::ApiError;
use kit::cache::Cache;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::pages::{Page, PageQuery};
use crate::store::{self, NewTask, Task, TaskChange, TaskStore};

/// The answer to a write for an account that was deleted.
const ACCOUNT_DELETED: &str = "This account no longer exists";

#[derive(Clone)]
pub struct TaskService {
    store: TaskStore,
    cache: Arc<Cache>,
}

impl TaskService {
    pub fn new(store: TaskStore, cache: Arc<Cache>) -> Self {
        Self { store, cache }
    }

    pub fn store(&self) -> &TaskStore {
        &self.store
    }

    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    /// One page of `owner`'s tasks, read through the cache.
    pub async fn page(&self, owner: Uuid, query: &PageQuery) -> Result<Page, ApiError> {
        self.cache
            .get_or_load(&owner.to_string(), &arguments_hash(&query.cache_key()), || async {
                let mut pages = self.store.pages(&[owner], query).await?;
                Ok::<_, ApiError>(pages.remove(&owner).unwrap_or_default())
            })
            .await
    }

    /// `owner`'s task `id`, read through the cache.
    pub async fn task(&self, owner: Uuid, id: Uuid) -> Result<Option<Task>, ApiError> {
        self.cache
            .get_or_load(&owner.to_string(), &format!("task:{}", id.simple()), || async {
                Ok::<_, ApiError>(self.store.by_ids(owner, &[id]).await?.pop())
            })
            .await
    }

    /// A deleted account (whose token is still valid) is UNAUTHENTICATED: it no longer exists.
    pub async fn create(&self, owner: Uuid, task: NewTask) -> Result<Task, ApiError> {
        let created = self.store.create(owner, task).await.map_err(|e| {
            if store::is_owner_deleted(&e) { ApiError::Unauthenticated(ACCOUNT_DELETED.into()) } else { e.into() }
        })?;
        self.written(owner).await;
        Ok(created)
    }

    pub async fn update(&self, owner: Uuid, id: Uuid, change: TaskChange) -> Result<Task, ApiError> {
        let changed = !change.is_empty();
        let task = self.store.update(owner, id, change).await?.ok_or_else(|| ApiError::not_found("Task"))?;
        if changed {
            self.written(owner).await;
        }
        Ok(task)
    }

    pub async fn delete(&self, owner: Uuid, id: Uuid) -> Result<(), ApiError> {
        if !self.store.delete(owner, id).await? {
            return Err(ApiError::not_found("Task"));
        }
        self.written(owner).await;
        Ok(())
    }

    /// After a committed write: every cached read of the owner goes stale at once.
    pub async fn written(&self, owner: Uuid) {
        self.cache.invalidate(&owner.to_string()).await;
    }
}

/// Cache keys carry a fixed-size digest of the arguments, never the arguments.
fn arguments_hash(arguments: &str) -> String {
    let digest = Sha256::digest(arguments.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}
