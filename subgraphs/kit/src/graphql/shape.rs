//! What the document measure needs to know of a schema, read from the schema's
//! own SDL (so it cannot drift from it): each field's return type and the
//! default of its `first`/`last` argument.

use std::collections::HashMap;

use async_graphql::Value;
use async_graphql::parser::types::{BaseType, FieldDefinition, Type, TypeKind, TypeSystemDefinition};

/// The root types and the fields of every object and interface type.
#[derive(Debug, Default)]
pub struct Shape {
    pub query: String,
    pub mutation: String,
    pub subscription: String,
    types: HashMap<String, HashMap<String, FieldShape>>,
}

#[derive(Debug)]
struct FieldShape {
    /// The named type under any list and non-null wrappers.
    returns: String,
    /// The largest default of the field's `first`/`last` arguments, if it has one.
    default_page: Option<u64>,
}

impl Shape {
    /// The shape of the schema whose SDL is `sdl`. An SDL that does not parse
    /// (never the case for a schema's own) gives an empty shape: every field
    /// then counts a page of one.
    pub fn from_sdl(sdl: &str) -> Self {
        let mut shape = Self {
            query: "Query".into(),
            mutation: "Mutation".into(),
            subscription: "Subscription".into(),
            ..Self::default()
        };
        let document = match async_graphql::parser::parse_schema(sdl) {
            Ok(document) => document,
            Err(e) => {
                tracing::error!(error = %e, "the schema's SDL does not parse: default page sizes are unknown");
                return shape;
            }
        };
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    let roots = schema.node;
                    let name = |root: Option<async_graphql::Positioned<async_graphql::Name>>, default: &str| {
                        root.map_or_else(|| default.to_owned(), |name| name.node.to_string())
                    };
                    shape.query = name(roots.query, "Query");
                    shape.mutation = name(roots.mutation, "Mutation");
                    shape.subscription = name(roots.subscription, "Subscription");
                }
                TypeSystemDefinition::Type(definition) => {
                    let fields = match definition.node.kind {
                        TypeKind::Object(object) => object.fields,
                        TypeKind::Interface(interface) => interface.fields,
                        _ => continue,
                    };
                    let known = shape.types.entry(definition.node.name.node.to_string()).or_default();
                    known.extend(fields.into_iter().map(|field| field_shape(field.node)));
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        shape
    }

    /// The named type `field` of `parent` returns.
    pub fn returns(&self, parent: &str, field: &str) -> Option<&str> {
        self.field(parent, field).map(|f| f.returns.as_str())
    }

    /// The default page size of `field` of `parent`, if it has a paging argument with a default.
    pub fn default_page(&self, parent: &str, field: &str) -> Option<u64> {
        self.field(parent, field)?.default_page
    }

    fn field(&self, parent: &str, field: &str) -> Option<&FieldShape> {
        self.types.get(parent)?.get(field)
    }
}

fn field_shape(field: FieldDefinition) -> (String, FieldShape) {
    let default_page = field
        .arguments
        .iter()
        .filter(|argument| matches!(argument.node.name.node.as_str(), "first" | "last"))
        .filter_map(|argument| match argument.node.default_value.as_ref().map(|v| &v.node) {
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        })
        .max();
    (field.name.node.to_string(), FieldShape { returns: named_type(&field.ty.node).to_owned(), default_page })
}

fn named_type(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named_type(inner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_root_types_return_types_and_page_defaults() {
        let shape = Shape::from_sdl(
            "schema { query: Root }
             type Root { me: User tasks(first: Int = 20, after: String): [Task!]! }
             interface Node { id: ID! }
             type User implements Node { id: ID! tasks(last: Int = 5, first: Int = 7): [Task] }
             type Task { id: ID! }",
        );
        assert_eq!(shape.query, "Root");
        assert_eq!(shape.mutation, "Mutation");
        assert_eq!(shape.returns("Root", "tasks"), Some("Task"));
        assert_eq!(shape.returns("Node", "id"), Some("ID"));
        assert_eq!(shape.default_page("Root", "tasks"), Some(20));
        assert_eq!(shape.default_page("User", "tasks"), Some(7));
        assert_eq!(shape.default_page("Root", "me"), None);
        assert_eq!(shape.returns("Root", "nothing"), None);
    }
}
