//! Input rules. Each failure is BAD_USER_INPUT naming the field.

use async_graphql::{ID, MaybeUndefined};
use chrono::{DateTime, Utc};
use kit::ApiError;
use kit::text::{self, Lines};
use uuid::Uuid;

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 5_000;

pub fn task_id(field: &str, id: &ID) -> Result<Uuid, ApiError> {
    // Length first: a huge string is refused before parsing.
    if id.len() > 36 {
        return Err(ApiError::invalid(field, format!("{field} must be a UUID")));
    }
    Uuid::parse_str(id).map_err(|_| ApiError::invalid(field, format!("{field} must be a UUID")))
}

/// Without bidi controls (they would make it display as something else),
/// trimmed, 1 to 200 characters, no control characters.
pub fn title(field: &str, raw: &str) -> Result<String, ApiError> {
    let visible = text::without(raw, text::is_bidi_control);
    let title = visible.trim();
    text::refuse_controls(field, "title", title, Lines::Single)?;
    if title.is_empty() {
        return Err(ApiError::invalid(field, "title must not be empty"));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(ApiError::invalid(field, format!("title must be at most {MAX_TITLE_CHARS} characters")));
    }
    Ok(title.to_owned())
}

/// Up to 5,000 characters, kept as written (line breaks and tabs are content);
/// no other control characters.
pub fn description(field: &str, raw: String) -> Result<String, ApiError> {
    if raw.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::invalid(
            field,
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    text::refuse_controls(field, "description", &raw, Lines::Multi)?;
    Ok(raw)
}

/// Due dates within a sane calendar range (Postgres and clients both cope).
pub fn due_at(field: &str, at: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let year = chrono::Datelike::year(&at);
    if !(1970..=9999).contains(&year) {
        return Err(ApiError::invalid(field, "dueAt must be between the years 1970 and 9999"));
    }
    Ok(at)
}

/// `Some(None)` for an explicit null, `None` when absent.
pub fn clearable<T, U>(
    value: MaybeUndefined<T>,
    check: impl FnOnce(T) -> Result<U, ApiError>,
) -> Result<Option<Option<U>>, ApiError> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(v) => Ok(Some(Some(check(v)?))),
    }
}

/// A field that may be omitted but not cleared.
pub fn not_null<T>(field: &str, value: MaybeUndefined<T>) -> Result<Option<T>, ApiError> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Err(ApiError::invalid(field, format!("{field} cannot be null"))),
        MaybeUndefined::Value(v) => Ok(Some(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded_in_characters_not_bytes() {
        assert_eq!(title("title", "  buy milk \n").unwrap(), "buy milk");
        assert!(title("title", "   ").is_err());
        assert!(title("title", &"é".repeat(200)).is_ok(), "200 two-byte characters fit");
        assert!(title("title", &"a".repeat(201)).is_err());
        assert!(title("title", "a\u{0}b").is_err());
        assert!(title("title", "buy\nmilk").is_err(), "a line break inside is a control character");
    }

    #[test]
    fn bidi_controls_leave_titles() {
        assert_eq!(title("title", "evil\u{202e}fdp.exe").unwrap(), "evilfdp.exe");
        assert_eq!(title("title", " \u{2067}x\u{2069} ").unwrap(), "x");
        assert!(title("title", "\u{202e}\u{2066}").is_err(), "nothing visible is left");
    }

    #[test]
    fn ids_must_be_uuids() {
        assert!(task_id("id", &ID::from("abc")).is_err());
        assert!(task_id("id", &ID::from("1")).is_err());
        assert!(task_id("id", &ID::from(Uuid::new_v4().to_string())).is_ok());
    }

    #[test]
    fn descriptions_are_bounded() {
        assert!(description("description", "x".repeat(5_000)).is_ok());
        assert!(description("description", "x".repeat(5_001)).is_err());
        assert!(description("description", "one\r\ntwo\n\tthree".into()).is_ok());
        assert!(description("description", "nul \u{0}".into()).is_err());
    }
}
