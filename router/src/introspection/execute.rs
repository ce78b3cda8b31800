//! A small executor for root introspection fields: field collection (aliases,
//! fragments, `@skip`/`@include`), field merging and `__typename`, over the index.

use std::collections::{HashMap, HashSet};

use graphql_tools::static_graphql::{query, schema};
use serde_json::{Map, Value};

use super::index::{
    Deprecatable, DirectiveDef, EnumValueDef, FieldDef, InputValueDef, IntrospectionSchema, Kind, TypeDef,
};

impl IntrospectionSchema {
    /// Resolves one root introspection field of an operation: `field.name` is `__schema` or
    /// `__type` (with argument `name`). Returns the JSON value for that field (an object, or
    /// null for an unknown `__type`), shaped by the field's sub-selection: aliases, nested
    /// fields, `__typename`, inline fragments and fragment spreads (from `fragments`),
    /// `@skip`/`@include`, and arguments given as literals or as variables (from `variables`).
    /// Object keys follow the selection order.
    ///
    /// Errors (a message for the GraphQL `errors` entry) on fields the introspection types
    /// do not have, missing or ill-typed arguments, unknown or cyclic fragments, and leaf or
    /// object fields with a missing or superfluous sub-selection.
    pub fn resolve_root_field(
        &self,
        field: &query::Field,
        fragments: &HashMap<String, query::FragmentDefinition>,
        variables: &Map<String, Value>,
    ) -> Result<Value, String> {
        let executor = Executor { schema: self, fragments, variables };
        executor.check_fragment_cycles(&field.selection_set)?;
        let resolved = match field.name.as_str() {
            "__schema" => Resolved::Node(Node::Schema),
            "__type" => {
                let name = executor.string_argument(&field.arguments, "name")?;
                let name = name.ok_or("Argument \"name\" of type \"String!\" is required, but it was not provided.")?;
                self.named(&name).map_or(Resolved::Null, |t| Resolved::Node(Node::Type(TypeNode::Named(t))))
            }
            other => return Err(format!("\"{other}\" is not a root introspection field.")),
        };
        executor.complete(field, resolved, &[&field.selection_set])
    }

    /// The introspection node for a type reference, or `None` if it names no known type.
    pub(super) fn type_node<'s>(&'s self, ty: &'s schema::Type) -> Option<TypeNode<'s>> {
        match ty {
            schema::Type::NamedType(name) => self.named(name).map(TypeNode::Named),
            schema::Type::ListType(inner) => Some(TypeNode::List(inner)),
            schema::Type::NonNullType(inner) => Some(TypeNode::NonNull(inner)),
        }
    }

    pub(super) fn named_nodes<'s>(&'s self, names: &[String]) -> Vec<Node<'s>> {
        names.iter().filter_map(|n| self.named(n)).map(|t| Node::Type(TypeNode::Named(t))).collect()
    }
}

/// A value of one of the introspection object types.
#[derive(Debug, Clone, Copy)]
pub(super) enum Node<'s> {
    Schema,
    Type(TypeNode<'s>),
    Field(&'s FieldDef),
    InputValue(&'s InputValueDef),
    EnumValue(&'s EnumValueDef),
    Directive(&'s DirectiveDef),
}

impl Node<'_> {
    fn typename(&self) -> &'static str {
        match self {
            Node::Schema => "__Schema",
            Node::Type(_) => "__Type",
            Node::Field(_) => "__Field",
            Node::InputValue(_) => "__InputValue",
            Node::EnumValue(_) => "__EnumValue",
            Node::Directive(_) => "__Directive",
        }
    }
}

/// A `__Type`: a named type, or a list / non-null wrapper of the inner type reference.
#[derive(Debug, Clone, Copy)]
pub(super) enum TypeNode<'s> {
    Named(&'s TypeDef),
    List(&'s schema::Type),
    NonNull(&'s schema::Type),
}

/// A field's value before its sub-selection is applied.
enum Resolved<'s> {
    Leaf(Value),
    Node(Node<'s>),
    Nodes(Vec<Node<'s>>),
    Null,
}

fn text(value: &str) -> Resolved<'static> {
    Resolved::Leaf(Value::String(value.to_owned()))
}

fn optional_text(value: Option<&str>) -> Resolved<'static> {
    Resolved::Leaf(value.map_or(Value::Null, |v| Value::String(v.to_owned())))
}

fn boolean(value: bool) -> Resolved<'static> {
    Resolved::Leaf(Value::Bool(value))
}

fn nodes<'s, T: 's>(items: impl IntoIterator<Item = &'s T>, node: fn(&'s T) -> Node<'s>) -> Resolved<'s> {
    Resolved::Nodes(items.into_iter().map(node).collect())
}

/// Items `@deprecated` does not hide, given the `includeDeprecated` argument.
fn visible<T: Deprecatable>(items: &[T], include_deprecated: bool) -> impl Iterator<Item = &T> {
    items.iter().filter(move |item| include_deprecated || item.deprecation().is_none())
}

fn unknown_field(field: &query::Field, typename: &str) -> String {
    format!("Cannot query field \"{}\" on type \"{typename}\".", field.name)
}

/// Fields of a selection, grouped by response key, in first-occurrence order.
type GroupedFields<'q> = Vec<(&'q str, Vec<&'q query::Field>)>;

/// Executes introspection selections for one operation.
struct Executor<'s, 'q> {
    schema: &'s IntrospectionSchema,
    fragments: &'q HashMap<String, query::FragmentDefinition>,
    variables: &'q Map<String, Value>,
}

impl<'s, 'q> Executor<'s, 'q> {
    /// Applies the (merged) sub-selections of `field` to its resolved value.
    fn complete(
        &self,
        field: &query::Field,
        resolved: Resolved<'s>,
        selections: &[&'q query::SelectionSet],
    ) -> Result<Value, String> {
        let has_selection = selections.iter().any(|s| !s.items.is_empty());
        match resolved {
            Resolved::Leaf(_) if has_selection => {
                Err(format!("Field \"{}\" must not have a selection since it is a leaf field.", field.name))
            }
            Resolved::Leaf(value) => Ok(value),
            Resolved::Null => Ok(Value::Null),
            Resolved::Node(_) | Resolved::Nodes(_) if !has_selection => {
                Err(format!("Field \"{}\" of an object type must have a selection of subfields.", field.name))
            }
            Resolved::Node(node) => self.execute(node, selections),
            Resolved::Nodes(items) => {
                items.into_iter().map(|node| self.execute(node, selections)).collect::<Result<_, _>>().map(Value::Array)
            }
        }
    }

    /// Executes selection sets on one introspection object.
    fn execute(&self, node: Node<'s>, selections: &[&'q query::SelectionSet]) -> Result<Value, String> {
        let mut grouped = GroupedFields::new();
        let mut visited = HashSet::new();
        for set in selections {
            self.collect_fields(node.typename(), set, &mut visited, &mut grouped)?;
        }
        let mut object = Map::new();
        for (key, fields) in grouped {
            let Some(&field) = fields.first() else { continue };
            let value = if field.name == "__typename" {
                Value::String(node.typename().to_owned())
            } else {
                let resolved = self.resolve(node, field)?;
                let sub: Vec<&'q query::SelectionSet> = fields.iter().map(|f| &f.selection_set).collect();
                self.complete(field, resolved, &sub)?
            };
            object.insert(key.to_owned(), value);
        }
        Ok(Value::Object(object))
    }

    /// The spec's CollectFields, for an object of type `typename`.
    fn collect_fields(
        &self,
        typename: &str,
        set: &'q query::SelectionSet,
        visited: &mut HashSet<&'q str>,
        grouped: &mut GroupedFields<'q>,
    ) -> Result<(), String> {
        for selection in &set.items {
            match selection {
                query::Selection::Field(field) => {
                    if self.is_included(&field.directives)? {
                        add_field(grouped, field);
                    }
                }
                query::Selection::InlineFragment(inline) => {
                    let applies = inline.type_condition.as_ref().is_none_or(|c| type_condition_applies(c, typename));
                    if applies && self.is_included(&inline.directives)? {
                        self.collect_fields(typename, &inline.selection_set, visited, grouped)?;
                    }
                }
                query::Selection::FragmentSpread(spread) => {
                    if !self.is_included(&spread.directives)? || !visited.insert(&spread.fragment_name) {
                        continue;
                    }
                    let fragment = self.fragment(&spread.fragment_name)?;
                    if type_condition_applies(&fragment.type_condition, typename) {
                        self.collect_fields(typename, &fragment.selection_set, visited, grouped)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn fragment(&self, name: &str) -> Result<&'q query::FragmentDefinition, String> {
        self.fragments.get(name).ok_or_else(|| format!("Unknown fragment \"{name}\"."))
    }

    /// Rejects fragments that spread themselves, which would otherwise never finish.
    fn check_fragment_cycles(&self, set: &'q query::SelectionSet) -> Result<(), String> {
        self.visit_spreads(set, &mut Vec::new(), &mut HashSet::new())
    }

    fn visit_spreads(
        &self,
        set: &'q query::SelectionSet,
        path: &mut Vec<&'q str>,
        done: &mut HashSet<&'q str>,
    ) -> Result<(), String> {
        for selection in &set.items {
            match selection {
                query::Selection::Field(field) => self.visit_spreads(&field.selection_set, path, done)?,
                query::Selection::InlineFragment(inline) => self.visit_spreads(&inline.selection_set, path, done)?,
                query::Selection::FragmentSpread(spread) => {
                    let name = spread.fragment_name.as_str();
                    if path.contains(&name) {
                        return Err(format!("Cannot spread fragment \"{name}\" within itself."));
                    }
                    let Some(fragment) = self.fragments.get(name) else { continue };
                    if done.contains(name) {
                        continue;
                    }
                    path.push(name);
                    self.visit_spreads(&fragment.selection_set, path, done)?;
                    path.pop();
                    done.insert(name);
                }
            }
        }
        Ok(())
    }

    /// `@skip(if:)` / `@include(if:)`.
    fn is_included(&self, directives: &[query::Directive]) -> Result<bool, String> {
        for directive in directives {
            let skip_when = match directive.name.as_str() {
                "skip" => true,
                "include" => false,
                _ => continue,
            };
            let condition = self.boolean_argument(&directive.arguments, "if")?.ok_or_else(|| {
                format!("Directive \"@{}\" argument \"if\" of type \"Boolean!\" is required.", directive.name)
            })?;
            if condition == skip_when {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// An argument's value: a literal, or a variable's value (`None` when absent).
    fn argument(&self, arguments: &[(String, query::Value)], name: &str) -> Option<Value> {
        let (_, value) = arguments.iter().find(|(n, _)| n == name)?;
        self.literal_to_json(value)
    }

    fn literal_to_json(&self, value: &query::Value) -> Option<Value> {
        Some(match value {
            query::Value::Variable(name) => return self.variables.get(name).cloned(),
            query::Value::Int(number) => number.as_i64().map_or(Value::Null, Value::from),
            query::Value::Float(number) => Value::from(*number),
            query::Value::String(text) => Value::String(text.clone()),
            query::Value::Boolean(flag) => Value::Bool(*flag),
            query::Value::Null => Value::Null,
            query::Value::Enum(name) => Value::String(name.clone()),
            query::Value::List(items) => {
                Value::Array(items.iter().map(|v| self.literal_to_json(v).unwrap_or(Value::Null)).collect())
            }
            query::Value::Object(fields) => Value::Object(
                fields.iter().filter_map(|(k, v)| self.literal_to_json(v).map(|v| (k.clone(), v))).collect(),
            ),
        })
    }

    /// A Boolean argument; `None` when absent or null.
    fn boolean_argument(&self, arguments: &[(String, query::Value)], name: &str) -> Result<Option<bool>, String> {
        match self.argument(arguments, name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(flag)),
            Some(other) => Err(format!("Argument \"{name}\" expects a Boolean, got {other}.")),
        }
    }

    /// A String argument; `None` when absent or null.
    fn string_argument(&self, arguments: &[(String, query::Value)], name: &str) -> Result<Option<String>, String> {
        match self.argument(arguments, name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(format!("Argument \"{name}\" expects a String, got {other}.")),
        }
    }

    /// `includeDeprecated`, false unless given.
    fn include_deprecated(&self, field: &query::Field) -> Result<bool, String> {
        Ok(self.boolean_argument(&field.arguments, "includeDeprecated")?.unwrap_or(false))
    }

    fn resolve(&self, node: Node<'s>, field: &query::Field) -> Result<Resolved<'s>, String> {
        match node {
            Node::Schema => self.resolve_schema(field),
            Node::Type(TypeNode::Named(def)) => self.resolve_named_type(def, field),
            Node::Type(TypeNode::List(inner)) => self.resolve_wrapper("LIST", inner, field),
            Node::Type(TypeNode::NonNull(inner)) => self.resolve_wrapper("NON_NULL", inner, field),
            Node::Field(def) => self.resolve_field_def(def, field),
            Node::InputValue(def) => self.resolve_input_value(def, field),
            Node::EnumValue(def) => resolve_enum_value(def, field),
            Node::Directive(def) => self.resolve_directive(def, field),
        }
    }

    fn type_reference(&self, ty: &'s schema::Type) -> Resolved<'s> {
        self.schema.type_node(ty).map_or(Resolved::Null, |t| Resolved::Node(Node::Type(t)))
    }

    fn root_type(&self, name: &Option<String>) -> Resolved<'s> {
        let def = name.as_deref().and_then(|n| self.schema.named(n));
        def.map_or(Resolved::Null, |t| Resolved::Node(Node::Type(TypeNode::Named(t))))
    }

    fn resolve_schema(&self, field: &query::Field) -> Result<Resolved<'s>, String> {
        let schema = self.schema;
        Ok(match field.name.as_str() {
            // The schema parser keeps no schema description.
            "description" => Resolved::Leaf(Value::Null),
            "types" => nodes(&schema.types, |t| Node::Type(TypeNode::Named(t))),
            "queryType" => self.root_type(&schema.query_type),
            "mutationType" => self.root_type(&schema.mutation_type),
            "subscriptionType" => self.root_type(&schema.subscription_type),
            "directives" => nodes(&schema.directives, Node::Directive),
            _ => return Err(unknown_field(field, "__Schema")),
        })
    }

    fn resolve_named_type(&self, def: &'s TypeDef, field: &query::Field) -> Result<Resolved<'s>, String> {
        let kind = def.kind;
        Ok(match field.name.as_str() {
            "kind" => text(kind.as_str()),
            "name" => text(&def.name),
            "description" => optional_text(def.description.as_deref()),
            "specifiedByURL" => optional_text(def.specified_by_url.as_deref()),
            "fields" if kind.has_fields() => nodes(visible(&def.fields, self.include_deprecated(field)?), Node::Field),
            "interfaces" if kind.has_fields() => Resolved::Nodes(self.schema.named_nodes(&def.interfaces)),
            "possibleTypes" if matches!(kind, Kind::Interface | Kind::Union) => {
                Resolved::Nodes(self.schema.named_nodes(&def.possible_types))
            }
            "enumValues" if kind == Kind::Enum => {
                nodes(visible(&def.enum_values, self.include_deprecated(field)?), Node::EnumValue)
            }
            "inputFields" if kind == Kind::InputObject => {
                nodes(visible(&def.input_fields, self.include_deprecated(field)?), Node::InputValue)
            }
            "isOneOf" if kind == Kind::InputObject => boolean(def.one_of),
            "fields" | "interfaces" | "possibleTypes" | "enumValues" | "inputFields" | "ofType" | "isOneOf" => {
                Resolved::Null
            }
            _ => return Err(unknown_field(field, "__Type")),
        })
    }

    fn resolve_wrapper(
        &self,
        kind: &str,
        inner: &'s schema::Type,
        field: &query::Field,
    ) -> Result<Resolved<'s>, String> {
        Ok(match field.name.as_str() {
            "kind" => text(kind),
            "ofType" => self.type_reference(inner),
            "name" | "description" | "specifiedByURL" | "fields" | "interfaces" | "possibleTypes" | "enumValues"
            | "inputFields" | "isOneOf" => Resolved::Null,
            _ => return Err(unknown_field(field, "__Type")),
        })
    }

    fn resolve_field_def(&self, def: &'s FieldDef, field: &query::Field) -> Result<Resolved<'s>, String> {
        Ok(match field.name.as_str() {
            "name" => text(&def.name),
            "description" => optional_text(def.description.as_deref()),
            "args" => nodes(visible(&def.args, self.include_deprecated(field)?), Node::InputValue),
            "type" => self.type_reference(&def.ty),
            "isDeprecated" => boolean(def.deprecation.is_some()),
            "deprecationReason" => optional_text(def.deprecation.as_deref()),
            _ => return Err(unknown_field(field, "__Field")),
        })
    }

    fn resolve_input_value(&self, def: &'s InputValueDef, field: &query::Field) -> Result<Resolved<'s>, String> {
        Ok(match field.name.as_str() {
            "name" => text(&def.name),
            "description" => optional_text(def.description.as_deref()),
            "type" => self.type_reference(&def.ty),
            "defaultValue" => optional_text(def.default_value.as_deref()),
            "isDeprecated" => boolean(def.deprecation.is_some()),
            "deprecationReason" => optional_text(def.deprecation.as_deref()),
            _ => return Err(unknown_field(field, "__InputValue")),
        })
    }

    fn resolve_directive(&self, def: &'s DirectiveDef, field: &query::Field) -> Result<Resolved<'s>, String> {
        Ok(match field.name.as_str() {
            "name" => text(&def.name),
            "description" => optional_text(def.description.as_deref()),
            "isRepeatable" => boolean(def.repeatable),
            "locations" => Resolved::Leaf(Value::Array(def.locations.iter().map(|l| Value::from(*l)).collect())),
            "args" => nodes(visible(&def.args, self.include_deprecated(field)?), Node::InputValue),
            _ => return Err(unknown_field(field, "__Directive")),
        })
    }
}

fn resolve_enum_value<'s>(def: &'s EnumValueDef, field: &query::Field) -> Result<Resolved<'s>, String> {
    Ok(match field.name.as_str() {
        "name" => text(&def.name),
        "description" => optional_text(def.description.as_deref()),
        "isDeprecated" => boolean(def.deprecation.is_some()),
        "deprecationReason" => optional_text(def.deprecation.as_deref()),
        _ => return Err(unknown_field(field, "__EnumValue")),
    })
}

fn type_condition_applies(condition: &query::TypeCondition, typename: &str) -> bool {
    let query::TypeCondition::On(name) = condition;
    name == typename
}

fn add_field<'q>(grouped: &mut GroupedFields<'q>, field: &'q query::Field) {
    let key = field.alias.as_deref().unwrap_or(&field.name);
    match grouped.iter_mut().find(|(k, _)| *k == key) {
        Some((_, fields)) => fields.push(field),
        None => grouped.push((key, vec![field])),
    }
}
