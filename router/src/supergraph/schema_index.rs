//! What projection (and the cost measure) needs to know of the API schema:
//! the root types, each type's kind, each field's declared type, and which
//! object types an abstract type may be.

use std::collections::HashMap;

use graphql_tools::static_graphql::schema::{self, Definition, Type, TypeDefinition};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::introspection::Kind;

/// What projection needs to know of the API schema.
#[derive(Default)]
pub struct SchemaIndex {
    pub query_type: String,
    pub mutation_type: Option<String>,
    pub subscription_type: Option<String>,
    // Fx hashing: these are hit for every field of every response.
    kinds: FxHashMap<String, Kind>,
    /// type → field → declared output type (nested, so lookups borrow, never allocate).
    fields: FxHashMap<String, FxHashMap<String, Type>>,
    /// Abstract type → the object types it may be at runtime.
    possible: FxHashMap<String, FxHashSet<String>>,
    /// Enum → its values in the API schema (`@inaccessible` ones are not).
    enum_values: FxHashMap<String, FxHashSet<String>>,
}

impl SchemaIndex {
    pub fn new(doc: &schema::Document) -> Self {
        let mut index = SchemaIndex::default();
        let mut roots: HashMap<&str, String> = HashMap::new();
        for definition in &doc.definitions {
            match definition {
                Definition::SchemaDefinition(s) => {
                    if let Some(q) = &s.query {
                        roots.insert("query", q.clone());
                    }
                    if let Some(m) = &s.mutation {
                        roots.insert("mutation", m.clone());
                    }
                    if let Some(s) = &s.subscription {
                        roots.insert("subscription", s.clone());
                    }
                }
                Definition::TypeDefinition(t) => index.add_type(t),
                _ => {}
            }
        }
        let named = |root: &str, default: &str, index: &SchemaIndex| {
            roots.get(root).cloned().or_else(|| index.kinds.contains_key(default).then(|| default.to_owned()))
        };
        index.query_type = named("query", "Query", &index).unwrap_or_else(|| "Query".to_owned());
        index.mutation_type = named("mutation", "Mutation", &index);
        index.subscription_type = named("subscription", "Subscription", &index);
        index
    }

    fn add_type(&mut self, t: &TypeDefinition) {
        match t {
            TypeDefinition::Scalar(s) => {
                self.kinds.insert(s.name.clone(), Kind::Scalar);
            }
            TypeDefinition::Enum(e) => {
                self.kinds.insert(e.name.clone(), Kind::Enum);
                self.enum_values.insert(e.name.clone(), e.values.iter().map(|v| v.name.clone()).collect());
            }
            TypeDefinition::InputObject(i) => {
                self.kinds.insert(i.name.clone(), Kind::InputObject);
            }
            TypeDefinition::Object(o) => {
                self.kinds.insert(o.name.clone(), Kind::Object);
                self.add_fields(&o.name, &o.fields);
                for interface in &o.implements_interfaces {
                    self.possible.entry(interface.clone()).or_default().insert(o.name.clone());
                }
            }
            TypeDefinition::Interface(i) => {
                self.kinds.insert(i.name.clone(), Kind::Interface);
                self.add_fields(&i.name, &i.fields);
                self.possible.entry(i.name.clone()).or_default();
            }
            TypeDefinition::Union(u) => {
                self.kinds.insert(u.name.clone(), Kind::Union);
                self.possible.entry(u.name.clone()).or_default().extend(u.types.iter().cloned());
            }
        }
    }

    fn add_fields(&mut self, type_name: &str, fields: &[schema::Field]) {
        let by_name = self.fields.entry(type_name.to_owned()).or_default();
        for field in fields {
            by_name.insert(field.name.clone(), field.field_type.clone());
        }
    }

    /// The schema's own copy of a type name (lets callers borrow it for as long as the schema lives).
    pub fn type_name(&self, type_name: &str) -> Option<&str> {
        self.kinds.get_key_value(type_name).map(|(k, _)| k.as_str())
    }

    pub fn kind(&self, type_name: &str) -> Option<Kind> {
        // Most leaves of a response are built-in scalars: no hashing for those.
        if matches!(type_name, "String" | "ID" | "Int" | "Boolean" | "Float") {
            return Some(Kind::Scalar);
        }
        self.kinds.get(type_name).copied()
    }

    pub fn field_type(&self, type_name: &str, field: &str) -> Option<&Type> {
        self.fields.get(type_name)?.get(field)
    }

    /// Whether a fragment on `condition` applies to an object of runtime type `object_type`.
    pub fn applies(&self, condition: &str, object_type: &str) -> bool {
        condition == object_type || self.possible.get(condition).is_some_and(|p| p.contains(object_type))
    }

    /// Whether `value` is one of the enum's values in the API schema.
    pub fn enum_has(&self, enum_type: &str, value: &str) -> bool {
        self.enum_values.get(enum_type).is_some_and(|values| values.contains(value))
    }

    pub fn is_abstract(&self, type_name: &str) -> bool {
        matches!(self.kind(type_name), Some(Kind::Interface | Kind::Union))
    }
}
