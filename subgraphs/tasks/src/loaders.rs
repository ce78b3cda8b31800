//! Batch loaders for federation: `_entities` asking for N tasks, or for the
//! tasks of N users, costs one SQL query per distinct page request, not N.
//!
//! Loaders are made per request, for its viewer: only the viewer's rows can load.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use kit::ApiError;
use uuid::Uuid;

use crate::pages::{Page, PageQuery};
use crate::service::TaskService;
use crate::store::Task;

/// Requests naming the same key within this window share one query.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_micros(500);

pub struct TaskLoader {
    service: TaskService,
    viewer: Uuid,
}

impl Loader<Uuid> for TaskLoader {
    type Value = Task;
    type Error = async_graphql::Error;

    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Task>, Self::Error> {
        let tasks = self.service.store().by_ids(self.viewer, ids).await.map_err(ApiError::from)?;
        Ok(tasks.into_iter().map(|t| (t.id, t)).collect())
    }
}

/// Keyed by (owner, page request). Another user's page is empty, without a query.
pub struct PageLoader {
    service: TaskService,
    viewer: Uuid,
}

impl Loader<(Uuid, PageQuery)> for PageLoader {
    type Value = Page;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[(Uuid, PageQuery)]) -> Result<HashMap<(Uuid, PageQuery), Page>, Self::Error> {
        let mut pages = HashMap::with_capacity(keys.len());
        for key @ (owner, query) in keys {
            let page = if *owner == self.viewer { self.service.page(*owner, query).await? } else { Page::default() };
            pages.insert(*key, page);
        }
        Ok(pages)
    }
}

pub fn task_loader(service: &TaskService, viewer: Uuid) -> DataLoader<TaskLoader> {
    DataLoader::new(TaskLoader { service: service.clone(), viewer }, tokio::spawn).delay(BATCH_WINDOW)
}

pub fn page_loader(service: &TaskService, viewer: Uuid) -> DataLoader<PageLoader> {
    DataLoader::new(PageLoader { service: service.clone(), viewer }, tokio::spawn).delay(BATCH_WINDOW)
}
