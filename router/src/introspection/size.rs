//! The size of an introspection answer, counted before it is built: the cost
//! limit's measure of a root `__schema` / `__type` field (see `limits`).

use std::collections::HashMap;

use graphql_tools::static_graphql::query;

use super::execute::{Node, TypeNode};
use super::index::IntrospectionSchema;

/// Spreads nested deeper than this are not followed (the operation limits refuse them first).
const MAX_SPREAD_NESTING: usize = 64;

impl IntrospectionSchema {
    /// The fields the answer to the root field `field` (`__schema` or `__type`)
    /// holds, itself included, counted up to `limit + 1`: every selection counts
    /// (`@skip`/`@include`, type conditions and `includeDeprecated` are not
    /// looked at) and duplicates count per occurrence, so this bounds the answer
    /// from above. A `__type` named by a variable counts the largest type.
    pub fn answer_size(
        &self,
        field: &query::Field,
        fragments: &HashMap<String, query::FragmentDefinition>,
        limit: u64,
    ) -> u64 {
        let count = |node: Node<'_>| {
            let mut counter = Counter { schema: self, fragments, left: limit };
            counter.object(node, &field.selection_set, 0);
            limit - counter.left
        };
        let answer = match field.name.as_str() {
            "__schema" => count(Node::Schema),
            "__type" => match field.arguments.iter().find(|(name, _)| name == "name").map(|(_, value)| value) {
                Some(query::Value::String(name)) => {
                    self.named(name).map_or(0, |t| count(Node::Type(TypeNode::Named(t))))
                }
                _ => self.types.iter().map(|t| count(Node::Type(TypeNode::Named(t)))).max().unwrap_or(0),
            },
            _ => 0,
        };
        answer.saturating_add(1)
    }

    /// The objects a field of `node` holds (none for leaves and unknown fields).
    fn children<'s>(&'s self, node: Node<'s>, field: &str) -> Vec<Node<'s>> {
        let type_node = |ty| self.type_node(ty).map(Node::Type).into_iter().collect();
        match (node, field) {
            (Node::Schema, "types") => self.types.iter().map(|t| Node::Type(TypeNode::Named(t))).collect(),
            (Node::Schema, "directives") => self.directives.iter().map(Node::Directive).collect(),
            (Node::Schema, "queryType") => self.root_nodes(&self.query_type),
            (Node::Schema, "mutationType") => self.root_nodes(&self.mutation_type),
            (Node::Schema, "subscriptionType") => self.root_nodes(&self.subscription_type),
            (Node::Type(TypeNode::Named(def)), "fields") => def.fields.iter().map(Node::Field).collect(),
            (Node::Type(TypeNode::Named(def)), "interfaces") => self.named_nodes(&def.interfaces),
            (Node::Type(TypeNode::Named(def)), "possibleTypes") => self.named_nodes(&def.possible_types),
            (Node::Type(TypeNode::Named(def)), "enumValues") => def.enum_values.iter().map(Node::EnumValue).collect(),
            (Node::Type(TypeNode::Named(def)), "inputFields") => {
                def.input_fields.iter().map(Node::InputValue).collect()
            }
            (Node::Type(TypeNode::List(inner) | TypeNode::NonNull(inner)), "ofType") => type_node(inner),
            (Node::Field(def), "args") => def.args.iter().map(Node::InputValue).collect(),
            (Node::Field(def), "type") => type_node(&def.ty),
            (Node::InputValue(def), "type") => type_node(&def.ty),
            (Node::Directive(def), "args") => def.args.iter().map(Node::InputValue).collect(),
            _ => Vec::new(),
        }
    }

    fn root_nodes(&self, name: &Option<String>) -> Vec<Node<'_>> {
        name.as_deref().and_then(|n| self.named(n)).map(|t| Node::Type(TypeNode::Named(t))).into_iter().collect()
    }
}

/// Counts fields down from a budget; stops when it is spent.
struct Counter<'s, 'q> {
    schema: &'s IntrospectionSchema,
    fragments: &'q HashMap<String, query::FragmentDefinition>,
    left: u64,
}

impl<'s> Counter<'s, '_> {
    fn object(&mut self, node: Node<'s>, set: &query::SelectionSet, spreads: usize) {
        for item in &set.items {
            if self.left == 0 {
                return;
            }
            match item {
                query::Selection::Field(field) => {
                    self.left -= 1;
                    if field.selection_set.items.is_empty() {
                        continue;
                    }
                    for child in self.schema.children(node, &field.name) {
                        self.object(child, &field.selection_set, 0);
                    }
                }
                query::Selection::InlineFragment(inline) => self.object(node, &inline.selection_set, spreads),
                query::Selection::FragmentSpread(spread) if spreads < MAX_SPREAD_NESTING => {
                    if let Some(fragment) = self.fragments.get(&spread.fragment_name) {
                        self.object(node, &fragment.selection_set, spreads + 1);
                    }
                }
                query::Selection::FragmentSpread(_) => {}
            }
        }
    }
}
