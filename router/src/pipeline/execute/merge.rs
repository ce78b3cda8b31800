//! Merging a fetch's answer into the response.

use super::*;

pub(super) fn value_at_mut<'v>(value: &'v mut Value, path: &[Value]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |current, segment| match segment {
        Value::String(key) => current.get_mut(key.as_str()),
        Value::Number(n) => current.get_mut(n.as_u64()? as usize),
        _ => None,
    })
}

/// Merges `source` into `target`: objects field by field, lists item by item.
pub fn deep_merge(target: &mut Value, source: Value) {
    match (target, source) {
        (Value::Object(t), Value::Object(s)) => {
            for (key, value) in s {
                match t.get_mut(&key) {
                    Some(existing) if !existing.is_null() => deep_merge(existing, value),
                    _ => {
                        t.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(s)) => {
            for (existing, value) in t.iter_mut().zip(s) {
                deep_merge(existing, value);
            }
        }
        (target, source) => *target = source,
    }
}
