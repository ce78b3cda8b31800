//! Projection: the merged subgraph data reshaped to exactly what the client
//! asked, in its field order, with its aliases, `__typename`s and fragments
//! resolved against runtime types, and nulls propagated per the spec.

use std::collections::HashMap;
use std::rc::Rc;

use rustc_hash::FxHashMap;

use graphql_tools::static_graphql::query::{
    Directive, Field, FragmentDefinition, Selection, SelectionSet, TypeCondition, Value as Literal,
};
use graphql_tools::static_graphql::schema::Type;
use serde_json::{Map, Value};

use super::error::graphql_error;
use super::prepare::{OperationType, Prepared, selection_set};
use crate::supergraph::SchemaIndex;

/// A non-null field resolved to null: its parent must become null.
struct Bubble;

/// One step of a response path; turned into JSON only when an error needs it.
#[derive(Clone, Copy)]
enum Step<'a> {
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
    Field(&'a Type),
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

/// Builds the response `data` from the merged `source`.
pub fn project(
    schema: &SchemaIndex,
    prepared: &Prepared,
    source: &Value,
    variables: &Map<String, Value>,
    errors: &mut Vec<Value>,
) -> Value {
    let root_type = match prepared.operation_type {
        OperationType::Mutation => schema.mutation_type.as_deref().unwrap_or("Mutation"),
        OperationType::Subscription => schema.subscription_type.as_deref().unwrap_or("Subscription"),
        OperationType::Query => schema.query_type.as_str(),
    };
    let empty = Map::new();
    let source = source.as_object().unwrap_or(&empty);
    let mut projector =
        Projector { schema, fragments: &prepared.fragments, variables, errors, memo: FxHashMap::default() };
    let mut path = Vec::new();
    let mut fields = Vec::new();
    projector.collect_into(root_type, selection_set(&prepared.operation), &mut fields);
    projector.resolve(root_type, &mut fields, true);
    match projector.object(root_type, &fields, source, &mut path) {
        Ok(data) => Value::Object(data),
        Err(Bubble) => Value::Null,
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
                schema.field_type(object_type, name).map(EntryKind::Field).unwrap_or(EntryKind::Unknown)
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

    fn object(
        &mut self,
        object_type: &'a str,
        entries: &Grouped<'a>,
        source: &Map<String, Value>,
        path: &mut Vec<Step<'a>>,
    ) -> Result<Map<String, Value>, Bubble> {
        let mut out = Map::with_capacity(entries.len());
        for entry in entries {
            let value = match entry.kind {
                EntryKind::Typename => Value::String(object_type.to_owned()),
                EntryKind::Introspection => source.get(entry.key).cloned().unwrap_or(Value::Null),
                EntryKind::Unknown => Value::Null,
                EntryKind::Field(field_type) => {
                    path.push(Step::Key(entry.key));
                    let value = self.complete(field_type, source.get(entry.key), &entry.fields, path);
                    path.pop();
                    value?
                }
            };
            out.insert(entry.key.to_owned(), value);
        }
        Ok(out)
    }

    fn complete(
        &mut self,
        field_type: &'a Type,
        value: Option<&Value>,
        fields: &[&'a Field],
        path: &mut Vec<Step<'a>>,
    ) -> Result<Value, Bubble> {
        match field_type {
            Type::NonNullType(inner) => {
                let completed = self.complete(inner, value, fields, path)?;
                if completed.is_null() {
                    self.null_error(path);
                    return Err(Bubble);
                }
                Ok(completed)
            }
            _ if value.is_none_or(Value::is_null) => Ok(Value::Null),
            Type::ListType(inner) => {
                let Some(items) = value.and_then(Value::as_array) else { return Ok(Value::Null) };
                let mut out = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    path.push(Step::Index(index));
                    let completed = self.complete(inner, Some(item), fields, path);
                    path.pop();
                    match completed {
                        Ok(v) => out.push(v),
                        Err(Bubble) => return Ok(Value::Null),
                    }
                }
                Ok(Value::Array(out))
            }
            Type::NamedType(name) => self.named(name, value.unwrap_or(&Value::Null), fields, path),
        }
    }

    fn named(
        &mut self,
        name: &'a str,
        value: &Value,
        fields: &[&'a Field],
        path: &mut Vec<Step<'a>>,
    ) -> Result<Value, Bubble> {
        let Some(object) = value.as_object() else {
            // Scalars and enums pass through as the subgraph serialised them.
            return Ok(value.clone());
        };
        if fields.iter().all(|f| f.selection_set.items.is_empty()) {
            return Ok(value.clone());
        }
        let runtime_type = if self.schema.is_abstract(name) {
            match self.runtime_type(object, fields) {
                Some(t) => t,
                None => return Ok(Value::Null),
            }
        } else {
            name
        };
        let grouped = self.collect(runtime_type, fields);
        match self.object(runtime_type, &grouped, object, path) {
            Ok(map) => Ok(Value::Object(map)),
            Err(Bubble) => Ok(Value::Null),
        }
    }

    /// The runtime type of an abstract-typed object: its `__typename`, or, when
    /// the client only asked for an aliased `__typename` (the planner then adds
    /// no plain one), the value under that alias. Only types of the schema count.
    fn runtime_type(&self, object: &Map<String, Value>, fields: &[&'a Field]) -> Option<&'a str> {
        let schema: &'a SchemaIndex = self.schema;
        if let Some(t) = object.get("__typename").and_then(Value::as_str) {
            return schema.type_name(t);
        }
        let mut aliases = Vec::new();
        for field in fields {
            self.typename_aliases(&field.selection_set, &mut aliases, 0);
        }
        aliases.iter().find_map(|alias| object.get(*alias).and_then(Value::as_str).and_then(|t| schema.type_name(t)))
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
        let path: Vec<Value> = path
            .iter()
            .map(|step| match step {
                Step::Key(k) => Value::String((*k).to_owned()),
                Step::Index(i) => Value::from(*i),
            })
            .collect();
        let explained = self.errors.iter().any(|e| {
            e.get("path").and_then(Value::as_array).is_some_and(|p| p.starts_with(&path) || path.starts_with(p))
        });
        if !explained {
            self.errors.push(graphql_error("Cannot return null for non-nullable field", Some(path), Some("INTERNAL")));
        }
    }
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
