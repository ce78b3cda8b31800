//! Merging a fetch's answer into the response.

use super::*;

/// The node at `path` (keys and list indexes) in `node`.
pub(super) fn node_at_mut<'v>(node: &'v mut Node, path: &[Step<'_>]) -> Option<&'v mut Node> {
    path.iter().try_fold(node, |current, step| match (current, step) {
        (Node::Object(fields), Step::Key(key)) => fields.iter_mut().find(|(k, _)| &**k == *key).map(|(_, v)| v),
        (Node::List(items), Step::Index(i)) => items.get_mut(*i),
        _ => None,
    })
}

/// Merges `source` into `target`: objects field by field, lists item by item.
pub fn deep_merge(target: &mut Node, source: Node) {
    match (target, source) {
        (Node::Object(t), Node::Object(s)) => {
            // Most of an entity's fields are new to the object: one allocation for all.
            t.reserve(s.len());
            for (key, value) in s {
                match t.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, existing)) if !existing.is_null() => deep_merge(existing, value),
                    Some((_, existing)) => *existing = value,
                    None => t.push((key, value)),
                }
            }
        }
        (Node::List(t), Node::List(s)) => {
            for (existing, value) in t.iter_mut().zip(s) {
                deep_merge(existing, value);
            }
        }
        (target, source) => *target = source,
    }
}
