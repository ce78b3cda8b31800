//! Keyset pagination: which page a client asked for, and opaque cursors.
//!
//! A cursor holds the ordering it was made for, the last row's sort key and its
//! id. The id breaks ties, so the order is total and pages never skip or repeat
//! rows, whatever is inserted meanwhile.

use async_graphql::Enum;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use kit::ApiError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::{Task, TaskStatus};

pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;
/// Longer `after` strings are refused before decoding.
const MAX_CURSOR_LEN: usize = 200;

/// What a page is ordered by.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[graphql(name = "TaskOrderField")]
pub enum OrderField {
    CreatedAt,
    UpdatedAt,
    /// Tasks without a due date come last in either direction.
    DueAt,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[graphql(name = "OrderDirection")]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Order {
    pub field: OrderField,
    pub direction: Direction,
}

impl Default for Order {
    /// Newest first.
    fn default() -> Self {
        Self { field: OrderField::CreatedAt, direction: Direction::Desc }
    }
}

impl Order {
    fn code(self) -> &'static str {
        match (self.field, self.direction) {
            (OrderField::CreatedAt, Direction::Asc) => "ca",
            (OrderField::CreatedAt, Direction::Desc) => "cd",
            (OrderField::UpdatedAt, Direction::Asc) => "ua",
            (OrderField::UpdatedAt, Direction::Desc) => "ud",
            (OrderField::DueAt, Direction::Asc) => "da",
            (OrderField::DueAt, Direction::Desc) => "dd",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        let (field, direction) = match code {
            "ca" => (OrderField::CreatedAt, Direction::Asc),
            "cd" => (OrderField::CreatedAt, Direction::Desc),
            "ua" => (OrderField::UpdatedAt, Direction::Asc),
            "ud" => (OrderField::UpdatedAt, Direction::Desc),
            "da" => (OrderField::DueAt, Direction::Asc),
            "dd" => (OrderField::DueAt, Direction::Desc),
            _ => return None,
        };
        Some(Self { field, direction })
    }

    /// The value of `task` this order sorts by.
    pub fn key_of(self, task: &Task) -> Option<DateTime<Utc>> {
        match self.field {
            OrderField::CreatedAt => Some(task.created_at),
            OrderField::UpdatedAt => Some(task.updated_at),
            OrderField::DueAt => task.due_at,
        }
    }
}

/// A position in one ordering: just after the row with this key and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor {
    pub order: Order,
    /// The row's sort key; `None` only for a task without a due date. Written
    /// as microseconds since the epoch.
    pub key: Option<DateTime<Utc>>,
    pub id: Uuid,
}

impl Cursor {
    pub fn after(order: Order, task: &Task) -> Self {
        Self { order, key: order.key_of(task), id: task.id }
    }

    pub fn encode(&self) -> String {
        let key = self.key.map_or_else(|| "-".to_owned(), |k| k.timestamp_micros().to_string());
        URL_SAFE_NO_PAD.encode(format!("v1:{}:{key}:{}", self.order.code(), self.id.simple()))
    }

    /// The cursor `text` encodes, if it is one. Its key must be a time Postgres
    /// holds: a crafted one outside that range is refused here, as bad input.
    pub fn decode(text: &str) -> Option<Self> {
        if text.len() > MAX_CURSOR_LEN {
            return None;
        }
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        let mut parts = raw.split(':');
        let (Some("v1"), Some(order), Some(key), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let key = if key == "-" { None } else { Some(kit::db::timestamp_from_micros(key.parse().ok()?)?) };
        Some(Self { order: Order::from_code(order)?, key, id: Uuid::parse_str(id).ok()? })
    }
}

/// One page request, validated. Equal requests are equal values (the cache and
/// the batch loader key on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PageQuery {
    pub first: u32,
    pub after: Option<Cursor>,
    pub status: Option<TaskStatus>,
    pub order: Order,
}

impl PageQuery {
    pub fn parse(
        first: Option<i32>,
        after: Option<&str>,
        status: Option<TaskStatus>,
        order: Option<Order>,
    ) -> Result<Self, ApiError> {
        let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(0..=MAX_PAGE_SIZE).contains(&first) {
            return Err(ApiError::invalid("first", format!("first must be between 0 and {MAX_PAGE_SIZE}")));
        }
        let order = order.unwrap_or_default();
        let after = match after {
            None => None,
            Some(text) => {
                let cursor =
                    Cursor::decode(text).ok_or_else(|| ApiError::invalid("after", "after is not a valid cursor"))?;
                if cursor.order != order {
                    return Err(ApiError::invalid("after", "after is a cursor for a different orderBy"));
                }
                if cursor.key.is_none() && order.field != OrderField::DueAt {
                    return Err(ApiError::invalid("after", "after is not a valid cursor"));
                }
                Some(cursor)
            }
        };
        Ok(Self { first: first as u32, after, status, order })
    }

    /// A short stable text naming this request, for cache keys.
    pub fn cache_key(&self) -> String {
        let status = self.status.map_or("any", TaskStatus::as_str);
        let after = self.after.map_or_else(|| "start".to_owned(), |c| c.encode());
        format!("page:{}:{}:{status}:{after}", self.first, self.order.code())
    }
}

/// One page of one user's tasks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Page {
    pub tasks: Vec<Task>,
    pub has_next_page: bool,
    pub total_count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let order = Order { field: OrderField::DueAt, direction: Direction::Asc };
        for key in [None, Some(1_700_000_000_123_456), Some(-5)] {
            let cursor = Cursor { order, key: key.and_then(DateTime::from_timestamp_micros), id: Uuid::new_v4() };
            assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }
        for garbage in ["", "abc", "djE6Y2Q6MTI6bm90LWEtdXVpZA", &"A".repeat(500)] {
            assert_eq!(Cursor::decode(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn keys_outside_the_times_postgres_holds_are_no_cursor() {
        let id = Uuid::new_v4().simple();
        for key in [i64::MAX, i64::MIN, -210_866_803_200_000_001] {
            let crafted = URL_SAFE_NO_PAD.encode(format!("v1:cd:{key}:{id}"));
            assert_eq!(Cursor::decode(&crafted), None, "{key}");
        }
    }

    #[test]
    fn page_sizes_outside_the_bounds_name_first() {
        for first in [-1, 101] {
            let err = PageQuery::parse(Some(first), None, None, None).unwrap_err();
            assert_eq!(err.code().as_str(), "BAD_USER_INPUT");
        }
        assert_eq!(PageQuery::parse(None, None, None, None).unwrap().first, 20);
        assert_eq!(PageQuery::parse(Some(100), None, None, None).unwrap().first, 100);
    }

    #[test]
    fn a_cursor_only_continues_its_own_ordering() {
        let created = Order::default();
        let cursor = Cursor { order: created, key: DateTime::from_timestamp_micros(1), id: Uuid::new_v4() }.encode();
        assert!(PageQuery::parse(None, Some(&cursor), None, Some(created)).is_ok());
        let due = Order { field: OrderField::DueAt, direction: Direction::Desc };
        assert!(PageQuery::parse(None, Some(&cursor), None, Some(due)).is_err());
    }
}
