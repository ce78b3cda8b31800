//! Tasks in Postgres. Every statement names the owner, so no query can reach
//! another user's rows; each one is counted (tests assert how many ran).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_graphql::Enum;
use chrono::{DateTime, Utc};
use kit::db::Database;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::pages::{Cursor, Direction, Order, OrderField, Page, PageQuery};

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Todo,
    InProgress,
    Done,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Todo => "TODO",
            TaskStatus::InProgress => "IN_PROGRESS",
            TaskStatus::Done => "DONE",
        }
    }
}

/// A task row. Cached as JSON with times in microseconds: parsing RFC 3339 was a
/// measurable share of a cached read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, FromRow)]
pub struct Task {
    pub id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub status: TaskStatus,
    #[serde(with = "chrono::serde::ts_microseconds_option")]
    pub due_at: Option<DateTime<Utc>>,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub updated_at: DateTime<Utc>,
}

/// A validated new task.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub title: String,
    pub description: Option<String>,
    pub status: TaskStatus,
    pub due_at: Option<DateTime<Utc>>,
}

/// A validated change: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct TaskChange {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub status: Option<TaskStatus>,
    pub due_at: Option<Option<DateTime<Utc>>>,
}

impl TaskChange {
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.description.is_none() && self.status.is_none() && self.due_at.is_none()
    }
}

const COLUMNS: &str = "id, user_id, title, description, status, due_at, created_at, updated_at";

#[derive(Clone)]
pub struct TaskStore {
    database: Database,
    statements: Arc<AtomicU64>,
}

impl TaskStore {
    pub fn new(database: Database) -> Self {
        Self { database, statements: Arc::new(AtomicU64::new(0)) }
    }

    /// The pool itself, for what does without failing fast (the cascade's consumer, tests).
    pub fn pool(&self) -> &PgPool {
        self.database.pool()
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    /// SQL statements this store has sent so far.
    pub fn statements_executed(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// Inserts a task; a deleted owner's is refused by the table's trigger
    /// (see [`is_owner_deleted`]).
    pub async fn create(&self, owner: Uuid, task: NewTask) -> sqlx::Result<Task> {
        self.count();
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tasks.tasks (id, user_id, title, description, status, due_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(owner)
        .bind(task.title)
        .bind(task.description)
        .bind(task.status)
        .bind(task.due_at)
        .fetch_one(&self.database)
        .await
    }

    /// Applies `change` to the owner's task in one statement; `None` if there is no such task.
    pub async fn update(&self, owner: Uuid, id: Uuid, change: TaskChange) -> sqlx::Result<Option<Task>> {
        if change.is_empty() {
            return Ok(self.by_ids(owner, &[id]).await?.pop());
        }
        self.count();
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE tasks.tasks SET
                 title = COALESCE($3, title),
                 description = CASE WHEN $4 THEN $5 ELSE description END,
                 status = COALESCE($6, status),
                 due_at = CASE WHEN $7 THEN $8 ELSE due_at END,
                 updated_at = clock_timestamp()
             WHERE id = $1 AND user_id = $2
             RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(owner)
        .bind(change.title)
        .bind(change.description.is_some())
        .bind(change.description.flatten())
        .bind(change.status)
        .bind(change.due_at.is_some())
        .bind(change.due_at.flatten())
        .fetch_optional(&self.database)
        .await
    }

    /// Whether the owner had such a task.
    pub async fn delete(&self, owner: Uuid, id: Uuid) -> sqlx::Result<bool> {
        self.count();
        let deleted = sqlx::query("DELETE FROM tasks.tasks WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(owner)
            .execute(&self.database)
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }

    /// The deletion cascade, inside its transaction: tombstones `owner`, so no
    /// task can be inserted for them again, and deletes every task of theirs.
    /// The owner's lock comes first (exclusive; inserts take it shared, see
    /// `tasks.guard_owner`), so an insert in flight commits before the DELETE's
    /// snapshot is taken and goes with the rest, and a later one sees the tombstone.
    pub async fn retire_owner(&self, tx: &mut PgConnection, owner: Uuid) -> sqlx::Result<u64> {
        self.count();
        sqlx::query("SELECT pg_advisory_xact_lock(tasks.owner_lock_key($1))").bind(owner).execute(&mut *tx).await?;
        self.count();
        sqlx::query("INSERT INTO tasks.deleted_users (user_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        self.count();
        Ok(sqlx::query("DELETE FROM tasks.tasks WHERE user_id = $1").bind(owner).execute(tx).await?.rows_affected())
    }

    /// The owner's tasks among `ids`, in one query.
    pub async fn by_ids(&self, owner: Uuid, ids: &[Uuid]) -> sqlx::Result<Vec<Task>> {
        self.count();
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tasks.tasks WHERE id = ANY($1) AND user_id = $2"
        )))
        .bind(ids)
        .bind(owner)
        .fetch_all(&self.database)
        .await
    }

    /// The same page of each owner's tasks, in one query.
    pub async fn pages(&self, owners: &[Uuid], query: &PageQuery) -> sqlx::Result<HashMap<Uuid, Page>> {
        self.count();
        let sql = page_sql(query);
        let mut statement =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(owners).bind(query.status).bind(i64::from(query.first) + 1);
        if let Some(cursor) = &query.after {
            statement = statement.bind(cursor.key).bind(cursor.id);
        }
        let rows = statement.fetch_all(&self.database).await?;

        let mut pages: HashMap<Uuid, Page> = owners.iter().map(|o| (*o, Page::default())).collect();
        for row in rows {
            let owner: Uuid = row.try_get("owner")?;
            let page = pages.entry(owner).or_default();
            page.total_count = row.try_get("total")?;
            if row.try_get::<Option<Uuid>, _>("id")?.is_some() {
                page.tasks.push(Task::from_row(&row)?);
            }
        }
        for page in pages.values_mut() {
            if page.tasks.len() > query.first as usize {
                page.tasks.truncate(query.first as usize);
                page.has_next_page = true;
            }
        }
        Ok(pages)
    }
}

/// The constraint the insert trigger names when the owner's account was deleted.
const OWNER_NOT_DELETED: &str = "tasks_owner_not_deleted";

/// Whether `error` is the refusal of a write for an owner whose account was deleted.
pub fn is_owner_deleted(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.constraint() == Some(OWNER_NOT_DELETED))
}

/// The sort expression of an ordering, over column `column` or a bound value.
fn sort_expression(order: Order, value: &str) -> String {
    match (order.field, order.direction) {
        (OrderField::CreatedAt, _) | (OrderField::UpdatedAt, _) => value.to_owned(),
        // Missing due dates sort last both ways: the sentinel matches the index.
        (OrderField::DueAt, Direction::Asc) => format!("COALESCE({value}, 'infinity'::timestamptz)"),
        (OrderField::DueAt, Direction::Desc) => format!("COALESCE({value}, '-infinity'::timestamptz)"),
    }
}

fn page_sql(query: &PageQuery) -> String {
    let column = match query.order.field {
        OrderField::CreatedAt => "created_at",
        OrderField::UpdatedAt => "updated_at",
        OrderField::DueAt => "due_at",
    };
    let (direction, comparison) = match query.order.direction {
        Direction::Asc => ("ASC", ">"),
        Direction::Desc => ("DESC", "<"),
    };
    let sort = sort_expression(query.order, column);
    let outer_sort = sort_expression(query.order, &format!("t.{column}"));
    let keyset = match query.after {
        Some(Cursor { .. }) => {
            format!("AND ({sort}, id) {comparison} ({}, $5)", sort_expression(query.order, "$4::timestamptz"))
        }
        None => String::new(),
    };
    let filter = "user_id = u.owner AND ($2::text IS NULL OR status = $2::text)";
    format!(
        "SELECT u.owner, c.total, t.id, t.user_id, t.title, t.description, t.status, t.due_at, t.created_at, t.updated_at
         FROM unnest($1::uuid[]) AS u(owner)
         CROSS JOIN LATERAL (SELECT count(*) AS total FROM tasks.tasks WHERE {filter}) c
         LEFT JOIN LATERAL (
             SELECT {COLUMNS} FROM tasks.tasks
             WHERE {filter} {keyset}
             ORDER BY {sort} {direction}, id {direction}
             LIMIT $3
         ) t ON true
         ORDER BY u.owner, {outer_sort} {direction}, t.id {direction}"
    )
}
