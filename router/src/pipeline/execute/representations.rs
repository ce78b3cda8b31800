//! The representations an entity fetch sends: found along the fetch's merge
//! path, de-duplicated, each with its `@requires` fields under their schema names.

use super::rewrites::typename_matches;
use super::*;

/// Walks each of `paths` in `data` and builds the representations of the
/// entities found there, de-duplicated across all of them: an entity reached
/// along two merge paths is sent once, and merged back into both places.
pub(super) fn collect_representations<'p>(
    schema: &SchemaIndex,
    data: &Value,
    paths: impl IntoIterator<Item = &'p FlattenNodePath>,
    requires: Option<&SelectionSet>,
    input_rewrites: Option<&[FetchRewrite]>,
) -> (Vec<Value>, Vec<EntityLocation>) {
    let mut found = Vec::new();
    for path in paths {
        walk(schema, data, path.as_slice(), &mut Vec::new(), &mut found);
    }
    let mut representations = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut locations = Vec::new();
    for (location, object) in found {
        let Some(mut representation) = requires.and_then(|r| represent(schema, object, r, None)) else { continue };
        apply_rewrites(schema, &mut representation, input_rewrites);
        // A representation without its type cannot be resolved: never send one.
        if representation.get("__typename").is_none_or(|t| !t.is_string()) {
            continue;
        }
        let key = representation.to_string();
        let position = *index.entry(key).or_insert_with(|| {
            representations.push(representation);
            representations.len() - 1
        });
        locations.push(EntityLocation { path: location, representation: position });
    }
    (representations, locations)
}

pub(super) fn walk<'v>(
    schema: &SchemaIndex,
    value: &'v Value,
    path: &[FlattenNodePathSegment],
    at: &mut Vec<Value>,
    found: &mut Vec<(Vec<Value>, &'v Value)>,
) {
    let Some((segment, rest)) = path.split_first() else {
        if value.is_object() {
            found.push((at.clone(), value));
        } else if let Some(items) = value.as_array() {
            // Entity lists without an explicit "@" segment.
            for (i, item) in items.iter().enumerate() {
                at.push(Value::from(i));
                walk(schema, item, path, at, found);
                at.pop();
            }
        }
        return;
    };
    match segment {
        FlattenNodePathSegment::Field(name) => {
            if let Some(next) = value.get(name) {
                at.push(Value::String(name.clone()));
                walk(schema, next, rest, at, found);
                at.pop();
            }
        }
        FlattenNodePathSegment::List => {
            for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                at.push(Value::from(i));
                walk(schema, item, rest, at, found);
                at.pop();
            }
        }
        FlattenNodePathSegment::TypeCondition(types) => {
            if typename_matches(schema, value, types) {
                walk(schema, value, rest, at, found);
            }
        }
    }
}

/// The object's fields named by `requires`; `None` when one is missing.
///
/// The planner may write `field: _internal_qp_alias_0 { … }` (the field's
/// schema name, then the alias it fetched the value under, e.g. for another
/// argument): the value is read under the alias and written under the name.
/// An object without `__typename` (a subgraph may leave it out) takes its type
/// from `typename`, else from the first type condition it meets.
pub(super) fn represent(
    schema: &SchemaIndex,
    object: &Value,
    requires: &SelectionSet,
    typename: Option<&str>,
) -> Option<Value> {
    let source = object.as_object()?;
    let mut own = source.get("__typename").and_then(Value::as_str).or(typename);
    let mut out = Map::new();
    for item in &requires.items {
        match item {
            SelectionItem::Field(field) => {
                let key = field.selection_identifier();
                let value = match source.get(&field.name).or_else(|| source.get(key)) {
                    Some(value) => represent_value(schema, value, &field.selections)?,
                    None if field.name == "__typename" => Value::String(own?.to_owned()),
                    None => return None,
                };
                out.insert(key.to_owned(), value);
            }
            SelectionItem::InlineFragment(fragment) => {
                let condition = fragment.type_condition.as_str();
                let runtime = *own.get_or_insert(condition);
                // An entity interface's implementations match a fragment on the interface.
                if schema.applies(condition, runtime)
                    && let Value::Object(inner) = represent(schema, object, &fragment.selections, Some(runtime))?
                {
                    out.extend(inner);
                }
            }
            SelectionItem::FragmentSpread(_) => {}
        }
    }
    Some(Value::Object(out))
}

/// A required field's value: leaves as they are, objects and lists (nested too) represented.
pub(super) fn represent_value(schema: &SchemaIndex, value: &Value, selections: &SelectionSet) -> Option<Value> {
    match value {
        Value::Array(items) => items.iter().map(|item| represent_value(schema, item, selections)).collect(),
        Value::Object(_) if !selections.is_empty() => represent(schema, value, selections, None),
        leaf => Some(leaf.clone()),
    }
}
