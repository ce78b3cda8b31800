//! The tasks subgraph's GraphQL schema (Apollo Federation v2).

use async_graphql::dataloader::DataLoader;
use async_graphql::{
    Context, EmptySubscription, ID, InputObject, MaybeUndefined, Object, Result, SDLExportOptions, Schema, SimpleObject,
};
use chrono::{DateTime, Utc};
use kit::config::QueryLimits;
use kit::identity::require_viewer;
use kit::{ApiError, Viewer};
use uuid::Uuid;

use crate::loaders::{PageLoader, TaskLoader};
use crate::pages::{Cursor, Direction, Order, OrderField, Page, PageQuery};
use crate::service::TaskService;
use crate::store::{self, NewTask, TaskChange, TaskStatus};
use crate::validation;

pub type TasksSchema = Schema<Query, Mutation, EmptySubscription>;

/// Something to do, owned by one user and visible only to them.
pub struct Task(store::Task);

#[Object]
impl Task {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    async fn status(&self) -> TaskStatus {
        self.0.status
    }

    async fn due_at(&self) -> Option<DateTime<Utc>> {
        self.0.due_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    async fn owner(&self) -> User {
        User { id: self.0.user_id }
    }
}

/// A user, owned by the auth subgraph; this one adds their tasks.
pub struct User {
    id: Uuid,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// The user's tasks, newest first unless `orderBy` says otherwise. Only the
    /// signed-in user's own tasks are visible: anyone else's list is empty.
    /// Null, with an error on this path, when it cannot be answered (a bad
    /// argument, or the tasks service unavailable): the rest of the user still
    /// comes back.
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        status: Option<TaskStatus>,
        order_by: Option<TaskOrder>,
    ) -> Result<Option<TaskConnection>> {
        require_viewer(ctx)?;
        let query = PageQuery::parse(first, after.as_deref(), status, order_by.map(Order::from))?;
        let loader = ctx.data_unchecked::<DataLoader<PageLoader>>();
        let page = loader.load_one((self.id, query)).await?.unwrap_or_default();
        Ok(Some(TaskConnection::new(page, query.order)))
    }
}

/// How to order a page of tasks. Ties are always broken by id.
#[derive(InputObject, Debug, Clone, Copy)]
pub struct TaskOrder {
    field: OrderField,
    #[graphql(default_with = "Direction::Asc")]
    direction: Direction,
}

impl From<TaskOrder> for Order {
    fn from(o: TaskOrder) -> Self {
        Order { field: o.field, direction: o.direction }
    }
}

#[derive(SimpleObject)]
pub struct TaskEdge {
    cursor: String,
    node: Task,
}

/// Relay page information.
#[derive(SimpleObject)]
#[graphql(shareable)]
pub struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct TaskConnection {
    edges: Vec<TaskEdge>,
    page_info: PageInfo,
    /// Tasks matching the filter, over all pages.
    total_count: i64,
}

impl TaskConnection {
    fn new(page: Page, order: Order) -> Self {
        let edges: Vec<TaskEdge> = page
            .tasks
            .into_iter()
            .map(|t| TaskEdge { cursor: Cursor::after(order, &t).encode(), node: Task(t) })
            .collect();
        let end_cursor = edges.last().map(|e| e.cursor.clone());
        Self {
            edges,
            page_info: PageInfo { has_next_page: page.has_next_page, end_cursor },
            total_count: page.total_count,
        }
    }
}

#[derive(InputObject)]
pub struct CreateTaskInput {
    /// Trimmed; 1 to 200 characters.
    title: String,
    /// Up to 5,000 characters.
    description: Option<String>,
    #[graphql(default_with = "TaskStatus::Todo")]
    status: TaskStatus,
    due_at: Option<DateTime<Utc>>,
}

/// Only the fields given change; `description` and `dueAt` are cleared with null.
#[derive(InputObject)]
pub struct UpdateTaskInput {
    title: MaybeUndefined<String>,
    description: MaybeUndefined<String>,
    status: MaybeUndefined<TaskStatus>,
    due_at: MaybeUndefined<DateTime<Utc>>,
}

impl CreateTaskInput {
    fn validate(self) -> Result<NewTask, ApiError> {
        Ok(NewTask {
            title: validation::title("input.title", &self.title)?,
            description: self.description.map(|d| validation::description("input.description", d)).transpose()?,
            status: self.status,
            due_at: self.due_at.map(|d| validation::due_at("input.dueAt", d)).transpose()?,
        })
    }
}

impl UpdateTaskInput {
    fn validate(self) -> Result<TaskChange, ApiError> {
        let title = validation::not_null("input.title", self.title)?;
        Ok(TaskChange {
            title: title.map(|t| validation::title("input.title", &t)).transpose()?,
            description: validation::clearable(self.description, |d| validation::description("input.description", d))?,
            status: validation::not_null("input.status", self.status)?,
            due_at: validation::clearable(self.due_at, |d| validation::due_at("input.dueAt", d))?,
        })
    }
}

fn service<'a>(ctx: &Context<'a>) -> &'a TaskService {
    ctx.data_unchecked::<TaskService>()
}

pub struct Query;

#[Object]
impl Query {
    /// One of the signed-in user's tasks; NOT_FOUND for any other id.
    async fn task(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Task>> {
        let viewer = require_viewer(ctx)?;
        let id = validation::task_id("id", &id)?;
        let task = service(ctx).task(viewer.user_id, id).await?.ok_or_else(|| ApiError::not_found("Task"))?;
        Ok(Some(Task(task)))
    }

    /// The signed-in user's tasks, newest first unless `orderBy` says otherwise.
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        status: Option<TaskStatus>,
        order_by: Option<TaskOrder>,
    ) -> Result<TaskConnection> {
        let viewer = require_viewer(ctx)?;
        let query = PageQuery::parse(first, after.as_deref(), status, order_by.map(Order::from))?;
        let page = service(ctx).page(viewer.user_id, &query).await?;
        Ok(TaskConnection::new(page, query.order))
    }

    /// Federation: a task by id, batched; another user's task resolves to null.
    #[graphql(entity)]
    async fn find_task_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Task>> {
        let (Some(loader), Ok(id)) = (ctx.data_opt::<DataLoader<TaskLoader>>(), Uuid::parse_str(&id)) else {
            return Ok(None);
        };
        Ok(loader.load_one(id).await?.map(Task))
    }

    /// Federation: any user reference; `tasks` decides what it may see.
    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        Uuid::parse_str(&id).ok().map(|id| User { id })
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    async fn create_task(&self, ctx: &Context<'_>, input: CreateTaskInput) -> Result<Task> {
        let viewer = require_viewer(ctx)?;
        let task = input.validate()?;
        Ok(Task(service(ctx).create(viewer.user_id, task).await?))
    }

    /// Changes only the fields given.
    async fn update_task(&self, ctx: &Context<'_>, id: ID, input: UpdateTaskInput) -> Result<Task> {
        let viewer = require_viewer(ctx)?;
        let id = validation::task_id("id", &id)?;
        let change = input.validate()?;
        Ok(Task(service(ctx).update(viewer.user_id, id, change).await?))
    }

    /// `true` once deleted; NOT_FOUND if the signed-in user has no such task.
    async fn delete_task(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let viewer = require_viewer(ctx)?;
        let id = validation::task_id("id", &id)?;
        service(ctx).delete(viewer.user_id, id).await?;
        Ok(true)
    }
}

/// The schema, with `service` as its data when serving, every request held to `limits`.
pub fn build(service: Option<TaskService>, limits: QueryLimits) -> TasksSchema {
    let mut builder = kit::graphql::limited(
        crate::SERVICE,
        Schema::build(Query, Mutation, EmptySubscription).enable_federation(),
        limits,
    );
    if let Some(service) = service {
        builder = builder.data(service);
    }
    builder.finish()
}

/// Adds the viewer-scoped batch loaders to one request.
pub fn with_loaders(request: async_graphql::Request, viewer: &Viewer, service: &TaskService) -> async_graphql::Request {
    request
        .data(crate::loaders::task_loader(service, viewer.user_id))
        .data(crate::loaders::page_loader(service, viewer.user_id))
}

/// The federation SDL, as `tasks print-schema` prints and `schema/tasks.graphql` holds.
pub fn sdl() -> String {
    build(None, QueryLimits::default()).sdl_with_options(SDLExportOptions::new().federation())
}
