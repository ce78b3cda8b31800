//! The representations an entity fetch sends: found along the fetch's merge
//! path, de-duplicated, each with its `@requires` fields under their schema
//! names, and written as the JSON list the request body carries.

use rustc_hash::FxHashMap;

use hive_router_query_planner::ast::selection_set::FieldSelection;

use super::super::answer::{Fields, Key, write_str, write_unescaped};
use super::rewrites::typename_matches;
use super::*;

/// An `_entities` list as JSON (`[…]`), ready for the request body.
pub(super) struct Representations {
    pub json: Vec<u8>,
    pub count: usize,
}

/// Walks each of `paths` in `data` and writes the representations of the
/// entities found there, de-duplicated across all of them: an entity reached
/// along two merge paths is sent once, and merged back into both places.
pub(super) fn collect_representations<'p>(
    schema: &SchemaIndex,
    data: &Node,
    paths: impl IntoIterator<Item = &'p FlattenNodePath>,
    requires: Option<&SelectionSet>,
    input_rewrites: Option<&[FetchRewrite]>,
) -> (Representations, Vec<EntityLocation<'p>>) {
    let mut found = Vec::new();
    for path in paths {
        walk(schema, data, path.as_slice(), &mut Vec::new(), &mut found);
    }
    let Some(requires) = requires else {
        return (Representations { json: b"[]".to_vec(), count: 0 }, Vec::new());
    };
    let mut list = Representations { json: Vec::with_capacity(64 * found.len() + 2), count: 0 };
    list.json.push(b'[');
    // Each distinct representation's bytes, as written into `list.json`.
    let mut index: FxHashMap<Box<[u8]>, usize> = FxHashMap::default();
    // Without rewrites a representation is written straight from the data.
    let direct = input_rewrites.is_none_or(<[FetchRewrite]>::is_empty);
    let mut written = Vec::with_capacity(64);
    let mut keys = Vec::new();
    let mut locations = Vec::with_capacity(found.len());
    for (location, object) in found {
        written.clear();
        let outcome = if direct {
            write_representation(object, requires, &mut keys, &mut written)
        } else {
            Err(Unwritten::General)
        };
        match outcome {
            Ok(()) => {}
            Err(Unwritten::Missing) => continue,
            Err(Unwritten::General) => {
                let Some(mut representation) = represent(schema, object, requires, None) else { continue };
                apply_rewrites(schema, &mut representation, input_rewrites);
                if !has_typename(&representation) {
                    continue;
                }
                written.clear();
                representation.write_json(&mut written);
            }
        }
        let position = match index.get(written.as_slice()) {
            Some(&position) => position,
            None => {
                if list.count > 0 {
                    list.json.push(b',');
                }
                list.json.extend_from_slice(&written);
                index.insert(written.as_slice().into(), list.count);
                list.count += 1;
                list.count - 1
            }
        };
        locations.push(EntityLocation { path: location, representation: position });
    }
    list.json.push(b']');
    (list, locations)
}

/// The object's type: its `__typename`, else `typename` (a subgraph may leave it out).
fn own_type<'s>(source: &'s Fields, typename: Option<&'s str>) -> Option<&'s str> {
    match Node::field(source, "__typename") {
        Some(Node::String(t)) => Some(t),
        _ => typename,
    }
}

/// A required field's value, read under its schema name, else under the
/// alias the planner fetched it with (see [`represent`]).
fn required<'s>(source: &'s Fields, field: &FieldSelection) -> Option<&'s Node> {
    Node::field(source, &field.name).or_else(|| Node::field(source, field.selection_identifier()))
}

/// A representation without its type cannot be resolved: none is sent.
fn has_typename(representation: &Node) -> bool {
    matches!(representation, Node::Object(f) if matches!(Node::field(f, "__typename"), Some(Node::String(_))))
}

/// Why a representation was not written straight from the data.
enum Unwritten {
    /// A required field (or the type) is missing: the entity is not sent.
    Missing,
    /// What the general path handles: a key the selection names twice (in
    /// a tree the last one wins), a fragment on another type than the
    /// object's own (the schema decides), or rewrites to apply first.
    General,
}

/// Writes the representation of `source` as JSON (see [`represent`]).
fn write_representation<'r>(
    source: &Fields,
    requires: &'r SelectionSet,
    keys: &mut Vec<&'r str>,
    out: &mut Vec<u8>,
) -> Result<(), Unwritten> {
    keys.clear();
    out.push(b'{');
    let typed = write_fields(source, requires, None, keys, out)?;
    out.push(b'}');
    if typed { Ok(()) } else { Err(Unwritten::Missing) }
}

/// Writes the fields `requires` names into the object being written, whose
/// keys so far are `keys`; `Ok(true)` when among them was a string `__typename`.
fn write_fields<'r>(
    source: &Fields,
    requires: &'r SelectionSet,
    typename: Option<&str>,
    keys: &mut Vec<&'r str>,
    out: &mut Vec<u8>,
) -> Result<bool, Unwritten> {
    let mut typed = false;
    let mut own = own_type(source, typename);
    for item in &requires.items {
        match item {
            SelectionItem::Field(field) => {
                let key = field.selection_identifier();
                if keys.contains(&key) {
                    return Err(Unwritten::General);
                }
                if !keys.is_empty() {
                    out.push(b',');
                }
                keys.push(key);
                // A GraphQL name: nothing to escape.
                write_unescaped(out, key);
                out.push(b':');
                match required(source, field) {
                    Some(value) => {
                        typed |= key == "__typename" && matches!(value, Node::String(_));
                        write_value(value, &field.selections, keys, out)?;
                    }
                    None if field.name == "__typename" => {
                        write_str(out, own.ok_or(Unwritten::Missing)?);
                        typed |= key == "__typename";
                    }
                    None => return Err(Unwritten::Missing),
                }
            }
            SelectionItem::InlineFragment(fragment) => {
                let condition = fragment.type_condition.as_str();
                let runtime = *own.get_or_insert(condition);
                // The object's own type is the common case; any other (an interface, say)
                // takes the general path, where the schema decides.
                if condition == runtime {
                    typed |= write_fields(source, &fragment.selections, Some(runtime), keys, out)?;
                } else {
                    return Err(Unwritten::General);
                }
            }
            SelectionItem::FragmentSpread(_) => {}
        }
    }
    Ok(typed)
}

/// A required field's value: leaves as they are, objects and lists (nested too) represented.
fn write_value<'r>(
    value: &Node,
    selections: &'r SelectionSet,
    keys: &mut Vec<&'r str>,
    out: &mut Vec<u8>,
) -> Result<(), Unwritten> {
    match value {
        Node::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, selections, keys, out)?;
            }
            out.push(b']');
        }
        Node::Object(fields) if !selections.is_empty() => {
            // A nested object has keys of its own: they follow the outer ones and go when it is done.
            let outer = std::mem::take(keys);
            out.push(b'{');
            let written = write_fields(fields, selections, None, keys, out);
            out.push(b'}');
            *keys = outer;
            written?;
        }
        leaf => leaf.write_json(out),
    }
    Ok(())
}

pub(super) fn walk<'v, 'p>(
    schema: &SchemaIndex,
    value: &'v Node,
    path: &'p [FlattenNodePathSegment],
    at: &mut Vec<Step<'p>>,
    found: &mut Vec<(Vec<Step<'p>>, &'v Fields)>,
) {
    let Some((segment, rest)) = path.split_first() else {
        match value {
            Node::Object(fields) => found.push((at.clone(), fields)),
            // Entity lists without an explicit "@" segment.
            Node::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    at.push(Step::Index(i));
                    walk(schema, item, path, at, found);
                    at.pop();
                }
            }
            _ => {}
        }
        return;
    };
    match (segment, value) {
        (FlattenNodePathSegment::Field(name), Node::Object(fields)) => {
            if let Some(next) = Node::field(fields, name) {
                at.push(Step::Key(name));
                walk(schema, next, rest, at, found);
                at.pop();
            }
        }
        (FlattenNodePathSegment::List, Node::List(items)) => {
            for (i, item) in items.iter().enumerate() {
                at.push(Step::Index(i));
                walk(schema, item, rest, at, found);
                at.pop();
            }
        }
        (FlattenNodePathSegment::TypeCondition(types), _) if typename_matches(schema, value, types) => {
            walk(schema, value, rest, at, found);
        }
        _ => {}
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
    source: &Fields,
    requires: &SelectionSet,
    typename: Option<&str>,
) -> Option<Node> {
    // A fragment's fields join the object's: room for a few from the start.
    let mut out = Vec::with_capacity(requires.items.len().max(4));
    represent_into(schema, source, requires, typename, &mut out)?;
    Some(Node::Object(out))
}

fn represent_into(
    schema: &SchemaIndex,
    source: &Fields,
    requires: &SelectionSet,
    typename: Option<&str>,
    out: &mut Vec<(Key, Node)>,
) -> Option<()> {
    let mut own = own_type(source, typename);
    for item in &requires.items {
        match item {
            SelectionItem::Field(field) => {
                let key = field.selection_identifier();
                let value = match required(source, field) {
                    Some(value) => represent_value(schema, value, &field.selections)?,
                    None if field.name == "__typename" => Node::String(own?.into()),
                    None => return None,
                };
                // A key met twice (a field and a fragment both name it) keeps its last value.
                match out.iter_mut().find(|(k, _)| &**k == key) {
                    Some((_, existing)) => *existing = value,
                    None => out.push((key.into(), value)),
                }
            }
            SelectionItem::InlineFragment(fragment) => {
                let condition = fragment.type_condition.as_str();
                let runtime = *own.get_or_insert(condition);
                // An entity interface's implementations match a fragment on the interface.
                if schema.applies(condition, runtime) {
                    represent_into(schema, source, &fragment.selections, Some(runtime), out)?;
                }
            }
            SelectionItem::FragmentSpread(_) => {}
        }
    }
    Some(())
}

/// A required field's value: leaves as they are, objects and lists (nested too) represented.
pub(super) fn represent_value(schema: &SchemaIndex, value: &Node, selections: &SelectionSet) -> Option<Node> {
    match value {
        Node::List(items) => {
            items.iter().map(|item| represent_value(schema, item, selections)).collect::<Option<_>>().map(Node::List)
        }
        Node::Object(fields) if !selections.is_empty() => represent(schema, fields, selections, None),
        leaf => Some(leaf.clone()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> SchemaIndex {
        let sdl = "type Query { a: Int } interface Media { id: ID! } \
                   type Book implements Media { id: ID! title: String author: Author } type Author { name: String }";
        SchemaIndex::new(&hive_router_query_planner::utils::parsing::safe_parse_schema(sdl).expect("parses"))
    }

    fn field(name: &str, items: Vec<Value>) -> Value {
        json!({ "kind": "Field", "name": name, "selections": { "items": items } })
    }

    fn on(type_condition: &str, items: Vec<Value>) -> Value {
        json!({ "kind": "InlineFragment", "typeCondition": type_condition, "selections": { "items": items } })
    }

    fn selection(items: Vec<Value>) -> SelectionSet {
        serde_json::from_value(json!({ "items": items })).expect("a selection")
    }

    fn object(text: &str) -> Node {
        serde_json::from_str(text).expect("JSON")
    }

    /// The representation as the general path (a tree) writes it, or `None` when it sends none.
    fn as_tree(schema: &SchemaIndex, source: &Node, requires: &SelectionSet) -> Option<String> {
        let representation = represent(schema, source.fields()?, requires, None).filter(has_typename)?;
        let mut out = Vec::new();
        representation.write_json(&mut out);
        String::from_utf8(out).ok()
    }

    fn written(source: &Node, requires: &SelectionSet) -> Result<String, &'static str> {
        let mut out = Vec::new();
        match write_representation(source.fields().expect("an object"), requires, &mut Vec::new(), &mut out) {
            Ok(()) => Ok(String::from_utf8(out).expect("UTF-8")),
            Err(Unwritten::Missing) => Err("missing"),
            Err(Unwritten::General) => Err("general"),
        }
    }

    #[test]
    fn a_representation_written_straight_is_the_one_the_tree_gives() {
        let schema = schema();
        let source = object(
            r#"{"__typename":"Book","id":"b\"1","title":"T","author":{"name":"Ada","extra":1},
                "tags":[[{"name":"x"}],[]],"other":true}"#,
        );
        let typename = field("__typename", vec![]);
        let requires = selection(vec![on(
            "Book",
            vec![
                typename.clone(),
                field("id", vec![]),
                field("author", vec![field("name", vec![])]),
                field("tags", vec![field("name", vec![])]),
            ],
        )]);
        let tree = as_tree(&schema, &source, &requires).expect("a representation");
        assert_eq!(written(&source, &requires).as_deref(), Ok(tree.as_str()));
        assert_eq!(tree, r#"{"__typename":"Book","id":"b\"1","author":{"name":"Ada"},"tags":[[{"name":"x"}],[]]}"#);

        // Without `__typename` in the data, the fragment's type is the object's.
        let untyped = object(r#"{"id":"2"}"#);
        let requires = selection(vec![on("Book", vec![typename.clone(), field("id", vec![])])]);
        assert_eq!(written(&untyped, &requires).as_deref(), Ok(r#"{"__typename":"Book","id":"2"}"#));
        assert_eq!(as_tree(&schema, &untyped, &requires).as_deref(), Some(r#"{"__typename":"Book","id":"2"}"#));
    }

    #[test]
    fn a_missing_field_or_type_sends_no_representation_either_way() {
        let schema = schema();
        let requires = selection(vec![field("__typename", vec![]), field("id", vec![])]);
        for text in [r#"{"__typename":"Book"}"#, r#"{"id":"1"}"#, r#"{"__typename":null,"id":"1"}"#] {
            let source = object(text);
            assert_eq!(written(&source, &requires), Err("missing"), "{text}");
            assert_eq!(as_tree(&schema, &source, &requires), None, "{text}");
        }
    }

    #[test]
    fn a_key_named_twice_or_a_fragment_on_another_type_takes_the_general_path() {
        let source = object(r#"{"__typename":"Book","id":"1"}"#);
        let twice =
            selection(vec![field("id", vec![]), on("Book", vec![field("__typename", vec![]), field("id", vec![])])]);
        assert_eq!(written(&source, &twice), Err("general"));
        let on_interface = selection(vec![on("Media", vec![field("__typename", vec![]), field("id", vec![])])]);
        assert_eq!(written(&source, &on_interface), Err("general"));
        assert_eq!(as_tree(&schema(), &source, &on_interface).as_deref(), Some(r#"{"__typename":"Book","id":"1"}"#));
    }
}
