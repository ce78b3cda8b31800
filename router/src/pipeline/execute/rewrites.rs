//! The planner's rewrites of inputs and outputs (`KeyRenamer`, `ValueSetter`),
//! applied to answers, entities and representations alike.

use super::*;

/// The edits a plan's rewrites make, on a [`Node`] tree: an answer's data, an
/// entity or a representation.
pub(super) trait Rewritable: Sized {
    fn items_mut(&mut self) -> Option<&mut [Self]>;
    fn typename(&self) -> Option<&str>;
    fn field_mut(&mut self, key: &str) -> Option<&mut Self>;
    /// The field `key`, added as `null` when missing; `None` when this is no object.
    fn field_or_null(&mut self, key: &str) -> Option<&mut Self>;
    fn rename_field(&mut self, from: &str, to: &str);
    fn set_string(&mut self, value: &str);
}

impl Rewritable for Node {
    fn items_mut(&mut self) -> Option<&mut [Self]> {
        match self {
            Node::List(items) => Some(items),
            _ => None,
        }
    }

    fn typename(&self) -> Option<&str> {
        match self {
            Node::Object(fields) => match Node::field(fields, "__typename") {
                Some(Node::String(t)) => Some(t),
                _ => None,
            },
            _ => None,
        }
    }

    fn field_mut(&mut self, key: &str) -> Option<&mut Self> {
        match self {
            Node::Object(fields) => fields.iter_mut().find(|(k, _)| &**k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn field_or_null(&mut self, key: &str) -> Option<&mut Self> {
        let Node::Object(fields) = self else { return None };
        let at = match fields.iter().position(|(k, _)| &**k == key) {
            Some(at) => at,
            None => {
                fields.push((key.into(), Node::Null));
                fields.len() - 1
            }
        };
        Some(&mut fields[at].1)
    }

    fn rename_field(&mut self, from: &str, to: &str) {
        if let Node::Object(fields) = self
            && let Some((key, _)) = fields.iter_mut().find(|(k, _)| &**k == from)
        {
            *key = to.into();
        }
    }

    fn set_string(&mut self, value: &str) {
        *self = Node::String(value.into());
    }
}

/// Applies each of `rewrites` to `value`.
pub(super) fn apply_rewrites<T: Rewritable>(schema: &SchemaIndex, value: &mut T, rewrites: Option<&[FetchRewrite]>) {
    for rewrite in rewrites.unwrap_or_default() {
        match rewrite {
            FetchRewrite::ValueSetter(setter) => set_value(schema, value, &setter.path, &setter.set_value_to),
            FetchRewrite::KeyRenamer(renamer) => rename_key(schema, value, &renamer.path, &renamer.rename_key_to),
        }
    }
}

/// Rewrite paths name no list steps: a list met on the way is stepped into, item by item.
pub(super) fn set_value<T: Rewritable>(schema: &SchemaIndex, value: &mut T, path: &[FetchNodePathSegment], to: &str) {
    if let Some(items) = value.items_mut() {
        items.iter_mut().for_each(|item| set_value(schema, item, path, to));
        return;
    }
    let Some((segment, rest)) = path.split_first() else {
        value.set_string(to);
        return;
    };
    match segment {
        FetchNodePathSegment::Key(key) => {
            if let Some(next) = value.field_or_null(key) {
                set_value(schema, next, rest, to);
            }
        }
        FetchNodePathSegment::TypenameEquals(types) => {
            if typename_applies(schema, value.typename(), types) {
                set_value(schema, value, rest, to);
            }
        }
    }
}

/// Undoes the planner's `_internal_qp_alias_N` aliases (its fix for same-named
/// fields of different types in one selection): the key at the end of `path`
/// gets its response name back.
pub(super) fn rename_key<T: Rewritable>(schema: &SchemaIndex, value: &mut T, path: &[FetchNodePathSegment], to: &str) {
    if let Some(items) = value.items_mut() {
        items.iter_mut().for_each(|item| rename_key(schema, item, path, to));
        return;
    }
    match path.split_first() {
        Some((FetchNodePathSegment::Key(key), [])) => value.rename_field(key, to),
        Some((FetchNodePathSegment::Key(key), rest)) => {
            if let Some(next) = value.field_mut(key) {
                rename_key(schema, next, rest, to);
            }
        }
        Some((FetchNodePathSegment::TypenameEquals(types), rest))
            if typename_applies(schema, value.typename(), types) =>
        {
            rename_key(schema, value, rest, to)
        }
        Some((FetchNodePathSegment::TypenameEquals(_), _)) | None => {}
    }
}

/// Whether an object of type `typename` is one of `types` or implements one
/// of them. An object without `__typename` is taken to be one: the aliased key
/// a rewrite looks for is only there when the fragment that asked for it applied.
pub(super) fn typename_applies(
    schema: &SchemaIndex,
    typename: Option<&str>,
    types: &std::collections::BTreeSet<String>,
) -> bool {
    typename.is_none_or(|t| types.iter().any(|condition| schema.applies(condition, t)))
}

/// Whether the object's `__typename` is one of `types` or implements one of them.
pub(super) fn typename_matches(schema: &SchemaIndex, value: &Node, types: &std::collections::BTreeSet<String>) -> bool {
    let Some(typename) = value.typename() else { return false };
    types.iter().any(|t| schema.applies(t, typename))
}
