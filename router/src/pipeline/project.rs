//! Projection: the merged subgraph data reshaped to exactly what the client
//! asked, in its field order, with its aliases, `__typename`s and fragments
//! resolved against runtime types, and nulls propagated per the spec.
//!
//! It writes the response's JSON as it goes rather than building a tree to
//! serialise afterwards: that tree (a map per object, a key string per field)
//! cost the router more than reading the subgraphs' answers. A non-null field
//! that turns out null cuts the output back to its nearest nullable ancestor.

use std::collections::HashMap;
use std::rc::Rc;

use rustc_hash::FxHashMap;

use graphql_tools::static_graphql::query::{
    Directive, Field, FragmentDefinition, Selection, SelectionSet, TypeCondition, Value as Literal,
};
use graphql_tools::static_graphql::schema::Type;
use serde_json::{Map, Value};

use super::answer::{Fields, Leaf, Node, write_str, write_unescaped};
use super::error::graphql_error;
use super::prepare::{OperationType, Prepared, selection_set};
use crate::introspection::named_type;
use crate::supergraph::{Kind, SchemaIndex};

/// A non-null field resolved to null: its parent must become null.
struct Bubble;

/// One step of a response path; turned into JSON only when an error needs it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// One response key of an object: the fields merged under it (first-seen
/// order) and what it is, resolved once per selection and runtime type.
struct Entry<'a> {
    key: &'a str,
    fields: Vec<&'a Field>,
    kind: EntryKind<'a>,
}

enum EntryKind<'a> {
    Typename,
    /// A root `__schema` / `__type`, already shaped by the introspection stage.
    Introspection,
    /// The field's type, and what its named type is (looked up once, not per value).
    Field(&'a Type, Option<Kind>),
    /// Not in the schema (cannot happen after validation): answered null.
    Unknown,
}

type Grouped<'a> = Vec<Entry<'a>>;

struct Projector<'a> {
    schema: &'a SchemaIndex,
    fragments: &'a HashMap<String, FragmentDefinition>,
    variables: &'a Map<String, Value>,
    errors: &'a mut Vec<Value>,
    /// CollectFields results, per (merged fields, runtime type): list items share them.
    memo: FxHashMap<(usize, usize, &'a str), Rc<Grouped<'a>>>,
}

/// Writes the response's `data` (an object, or `null`), shaped from
/// `source`, at the end of `out`.
pub fn project(
    schema: &SchemaIndex,
    prepared: &Prepared,
    source: &Node,
    variables: &Map<String, Value>,
    errors: &mut Vec<Value>,
    out: &mut Vec<u8>,
) {
    let root_type = match prepared.operation_type {
        OperationType::Mutation => schema.mutation_type.as_deref().unwrap_or("Mutation"),
        OperationType::Subscription => schema.subscription_type.as_deref().unwrap_or("Subscription"),
        OperationType::Query => schema.query_type.as_str(),
    };
    let source = source.fields();
    let mut projector =
        Projector { schema, fragments: &prepared.fragments, variables, errors, memo: FxHashMap::default() };
    let mut path = Vec::new();
    let mut fields = Vec::new();
    projector.collect_into(root_type, selection_set(&prepared.operation), &mut fields);
    projector.resolve(root_type, &mut fields, true);
    let start = out.len();
    if projector.object(root_type, &fields, source, &mut path, out).is_err() {
        null_from(out, start);
    }
}

impl<'a> Projector<'a> {
    /// CollectFields for the sub-selections of `fields` on `object_type`, memoised.
    fn collect(&mut self, object_type: &'a str, fields: &[&'a Field]) -> Rc<Grouped<'a>> {
        let key = (fields.as_ptr() as usize, fields.len(), object_type);
        if let Some(hit) = self.memo.get(&key) {
            return hit.clone();
        }
        let mut grouped = Vec::new();
        for field in fields {
            self.collect_into(object_type, &field.selection_set, &mut grouped);
        }
        self.resolve(object_type, &mut grouped, false);
        let grouped = Rc::new(grouped);
        self.memo.insert(key, grouped.clone());
        grouped
    }

    /// Decides once what each entry is on `object_type`.
    fn resolve(&self, object_type: &str, grouped: &mut Grouped<'a>, is_root: bool) {
        let schema: &'a SchemaIndex = self.schema;
        for entry in grouped.iter_mut() {
            let name = entry.fields[0].name.as_str();
            entry.kind = if name == "__typename" {
                EntryKind::Typename
            } else if is_root && matches!(name, "__schema" | "__type") {
                EntryKind::Introspection
            } else {
                match schema.field_type(object_type, name) {
                    Some(field_type) => EntryKind::Field(field_type, schema.kind(named_type(field_type))),
                    None => EntryKind::Unknown,
                }
            };
        }
    }

    fn collect_into(&self, object_type: &str, set: &'a SelectionSet, grouped: &mut Grouped<'a>) {
        for item in &set.items {
            match item {
                Selection::Field(field) if is_included(&field.directives, self.variables) => {
                    let key = field.alias.as_deref().unwrap_or(&field.name);
                    match grouped.iter_mut().find(|e| e.key == key) {
                        Some(entry) => entry.fields.push(field),
                        None => grouped.push(Entry { key, fields: vec![field], kind: EntryKind::Unknown }),
                    }
                }
                Selection::InlineFragment(inline) if is_included(&inline.directives, self.variables) => {
                    let applies = match &inline.type_condition {
                        Some(TypeCondition::On(t)) => self.schema.applies(t, object_type),
                        None => true,
                    };
                    if applies {
                        self.collect_into(object_type, &inline.selection_set, grouped);
                    }
                }
                Selection::FragmentSpread(spread) if is_included(&spread.directives, self.variables) => {
                    let Some(fragment) = self.fragments.get(&spread.fragment_name) else { continue };
                    let TypeCondition::On(t) = &fragment.type_condition;
                    if self.schema.applies(t, object_type) {
                        self.collect_into(object_type, &fragment.selection_set, grouped);
                    }
                }
                _ => {}
            }
        }
    }

    /// `source`: `None` when the subgraphs gave no object (every field is then missing).
    fn object(
        &mut self,
        object_type: &'a str,
        entries: &Grouped<'a>,
        source: Option<&Fields>,
        path: &mut Vec<Step<'a>>,
        out: &mut Vec<u8>,
    ) -> Result<(), Bubble> {
        out.push(b'{');
        for (i, entry) in entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // A response key: a GraphQL name (`[_A-Za-z][_0-9A-Za-z]*`, as the
            // parser and the schema admit them, type names too), with nothing to escape.
            write_unescaped(out, entry.key);
            out.push(b':');
            let value = || source.and_then(|fields| Node::field(fields, entry.key));
            match entry.kind {
                EntryKind::Typename => write_unescaped(out, object_type),
                EntryKind::Introspection => match value() {
                    Some(value) => value.write_json(out),
                    None => out.extend_from_slice(b"null"),
                },
                EntryKind::Unknown => out.extend_from_slice(b"null"),
                EntryKind::Field(field_type, kind) => {
                    path.push(Step::Key(entry.key));
                    let written = self.complete(field_type, kind, value(), &entry.fields, path, out);
                    path.pop();
                    written?;
                }
            }
        }
        out.push(b'}');
        Ok(())
    }

    /// Writes the completed value: `Ok(true)` when that is `null`.
    /// `kind`: what the named type inside `field_type` is.
    fn complete(
        &mut self,
        field_type: &'a Type,
        kind: Option<Kind>,
        value: Option<&Node>,
        fields: &[&'a Field],
        path: &mut Vec<Step<'a>>,
        out: &mut Vec<u8>,
    ) -> Result<bool, Bubble> {
        match (field_type, value.filter(|v| !v.is_null())) {
            (Type::NonNullType(inner), _) => {
                if self.complete(inner, kind, value, fields, path, out)? {
                    self.null_error(path);
                    return Err(Bubble);
                }
                Ok(false)
            }
            (_, None) => {
                out.extend_from_slice(b"null");
                Ok(true)
            }
            (Type::ListType(inner), Some(value)) => {
                let Some(items) = value.items() else {
                    self.value_error(path, "Expected a list, but the subgraph gave a single value".to_owned());
                    out.extend_from_slice(b"null");
                    return Ok(true);
                };
                let start = out.len();
                out.push(b'[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    path.push(Step::Index(index));
                    let completed = self.complete(inner, kind, Some(item), fields, path, out);
                    path.pop();
                    if completed.is_err() {
                        return Ok(null_from(out, start));
                    }
                }
                out.push(b']');
                Ok(false)
            }
            (Type::NamedType(name), Some(value)) => self.named(name, kind, value, fields, path, out),
        }
    }

    /// Writes a non-null value of the named type: `Ok(true)` when it wrote `null`.
    fn named(
        &mut self,
        name: &'a str,
        kind: Option<Kind>,
        value: &Node,
        fields: &[&'a Field],
        path: &mut Vec<Step<'a>>,
        out: &mut Vec<u8>,
    ) -> Result<bool, Bubble> {
        if let Some(kind @ (Kind::Scalar | Kind::Enum)) = kind {
            return Ok(self.leaf(name, kind, value, path, out));
        }
        let Some(object) = value.fields() else {
            self.value_error(path, format!("Expected a value of type \"{name}\" to be an object"));
            out.extend_from_slice(b"null");
            return Ok(true);
        };
        if kind.is_none() {
            // Not in the API schema (cannot happen after validation): passed through.
            value.write_json(out);
            return Ok(false);
        }
        let runtime_type = if matches!(kind, Some(Kind::Interface | Kind::Union)) {
            match self.runtime_type(name, object, fields, path) {
                Some(t) => t,
                None => {
                    out.extend_from_slice(b"null");
                    return Ok(true);
                }
            }
        } else {
            name
        };
        let grouped = self.collect(runtime_type, fields);
        let start = out.len();
        match self.object(runtime_type, &grouped, Some(object), path, out) {
            Ok(()) => Ok(false),
            Err(Bubble) => Ok(null_from(out, start)),
        }
    }

    /// Writes a scalar's or an enum's value if it is one of its type, else
    /// `null` and an error at `path`: `true` when it wrote `null`. Enums take
    /// the API schema's values only (not an `@inaccessible` one a subgraph
    /// still has); built-in scalars their JSON shape (an integral ID becomes
    /// its string, as the spec serialises it); custom scalars anything.
    fn leaf(&mut self, name: &'a str, kind: Kind, value: &Node, path: &[Step<'a>], out: &mut Vec<u8>) -> bool {
        let leaf = value.leaf();
        let fits = match (kind, name, &leaf) {
            (Kind::Enum, _, Leaf::String(v)) => self.schema.enum_has(name, v),
            (Kind::Enum, _, _) => false,
            (_, "Int", Leaf::Number(n)) => match whole_i32(n) {
                Some(_) if !n.is_f64() => true,
                Some(whole) => {
                    // Writing a number into memory cannot fail.
                    let _ = serde_json::to_writer(&mut *out, &whole);
                    return false;
                }
                None => false,
            },
            (_, "Float", Leaf::Number(_)) | (_, "String" | "ID", Leaf::String(_)) | (_, "Boolean", Leaf::Bool(_)) => {
                true
            }
            (_, "ID", Leaf::Number(n)) if n.is_i64() || n.is_u64() => {
                write_str(out, &n.to_string());
                return false;
            }
            (_, "Int" | "Float" | "String" | "Boolean" | "ID", _) => false,
            _ => true,
        };
        if fits {
            value.write_json(out);
            return false;
        }
        let shown = match leaf {
            Leaf::String(v) => serde_json::to_string(v).unwrap_or_default(),
            Leaf::Number(n) => n.to_string(),
            Leaf::Bool(b) => b.to_string(),
            Leaf::Composite => "a list or an object".to_owned(),
            Leaf::Null => "null".to_owned(),
        };
        let message = match kind {
            Kind::Enum => format!("Enum \"{name}\" cannot represent value: {shown}"),
            _ => format!("{name} cannot represent value: {shown}"),
        };
        self.value_error(path, message);
        out.extend_from_slice(b"null");
        true
    }

    /// The runtime type of an object of the abstract type `name`: its
    /// `__typename`, or, when the client only asked for an aliased `__typename`
    /// (the planner then adds no plain one), the value under that alias. It must
    /// be `name` (an interface object answers with the interface's name) or one
    /// of its types in the API schema. Without one, an interface's object is
    /// projected against the interface's own fields (a subgraph may leave
    /// `__typename` out when the client asked for nothing else; the planner is
    /// made to ask for it wherever the concrete type matters, see `prepare`); a
    /// union's is null, with an error.
    fn runtime_type(
        &mut self,
        name: &'a str,
        object: &Fields,
        fields: &[&'a Field],
        path: &[Step<'a>],
    ) -> Option<&'a str> {
        let schema: &'a SchemaIndex = self.schema;
        let mut typename = Node::field(object, "__typename").and_then(Node::as_str);
        if typename.is_none() {
            let mut aliases = Vec::new();
            for field in fields {
                self.typename_aliases(&field.selection_set, &mut aliases, 0);
            }
            typename = aliases.iter().find_map(|alias| Node::field(object, alias).and_then(Node::as_str));
        }
        let message = match typename {
            Some(t) => match schema.type_name(t).filter(|t| schema.applies(name, t)) {
                Some(runtime) => return Some(runtime),
                None => format!("Abstract type \"{name}\" cannot be of type {}", Value::from(t)),
            },
            None if schema.kind(name) == Some(Kind::Interface) => return Some(name),
            None => format!("Abstract type \"{name}\" must resolve to an object type: the subgraph gave no __typename"),
        };
        self.value_error(path, message);
        None
    }

    fn typename_aliases(&self, set: &'a SelectionSet, found: &mut Vec<&'a str>, depth: usize) {
        // Fragment cycles are rejected by validation; the bound is a second line of defence.
        if depth > 32 {
            return;
        }
        for item in &set.items {
            match item {
                Selection::Field(f) if f.name == "__typename" => found.extend(f.alias.as_deref()),
                Selection::Field(_) => {}
                Selection::InlineFragment(i) => self.typename_aliases(&i.selection_set, found, depth + 1),
                Selection::FragmentSpread(s) => {
                    if let Some(fragment) = self.fragments.get(&s.fragment_name) {
                        self.typename_aliases(&fragment.selection_set, found, depth + 1);
                    }
                }
            }
        }
    }

    /// Adds "cannot return null" unless an error already explains this path.
    fn null_error(&mut self, path: &[Step<'a>]) {
        let path = path_json(path);
        let explained = self.errors.iter().any(|e| {
            e.get("path").and_then(Value::as_array).is_some_and(|p| p.starts_with(&path) || path.starts_with(p))
        });
        if !explained {
            self.errors.push(graphql_error("Cannot return null for non-nullable field", Some(path), Some("INTERNAL")));
        }
    }

    /// A subgraph's value that does not fit the API schema: it becomes null, with this error.
    fn value_error(&mut self, path: &[Step<'a>], message: String) {
        self.errors.push(graphql_error(&message, Some(path_json(path)), Some("INTERNAL")));
    }
}

pub fn path_json(path: &[Step<'_>]) -> Vec<Value> {
    path.iter()
        .map(|step| match step {
            Step::Key(k) => Value::String((*k).to_owned()),
            Step::Index(i) => Value::from(*i),
        })
        .collect()
}

/// An integral JSON number within Int's 32 bits (`1.0` counts: JSON does not tell it from `1`).
fn whole_i32(n: &serde_json::Number) -> Option<i32> {
    if let Some(i) = n.as_i64() {
        return i32::try_from(i).ok();
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && f >= f64::from(i32::MIN) && f <= f64::from(i32::MAX)).then_some(f as i32)
}

/// Cuts `out` back to where a value began and writes `null` there instead.
fn null_from(out: &mut Vec<u8>, start: usize) -> bool {
    out.truncate(start);
    out.extend_from_slice(b"null");
    true
}

/// Evaluates `@skip(if:)` and `@include(if:)`.
pub fn is_included(directives: &[Directive], variables: &Map<String, Value>) -> bool {
    let flag = |directive: &Directive| {
        directive
            .arguments
            .iter()
            .find(|(name, _)| name == "if")
            .map(|(_, v)| literal_to_json(v, variables) == Value::Bool(true))
            .unwrap_or(false)
    };
    directives.iter().all(|d| match d.name.as_str() {
        "skip" => !flag(d),
        "include" => flag(d),
        _ => true,
    })
}

/// A GraphQL literal as JSON, variables substituted.
pub fn literal_to_json(value: &Literal, variables: &Map<String, Value>) -> Value {
    match value {
        Literal::Variable(name) => variables.get(name).cloned().unwrap_or(Value::Null),
        Literal::Int(i) => i.as_i64().map(Value::from).unwrap_or(Value::Null),
        Literal::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
        Literal::String(s) => Value::String(s.clone()),
        Literal::Boolean(b) => Value::Bool(*b),
        Literal::Null => Value::Null,
        Literal::Enum(e) => Value::String(e.clone()),
        Literal::List(items) => Value::Array(items.iter().map(|v| literal_to_json(v, variables)).collect()),
        Literal::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), literal_to_json(v, variables))).collect())
        }
    }
}
