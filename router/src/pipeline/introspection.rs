//! Introspection (`__schema`, `__type`) answered by the router from the API schema.
//!
//! The API schema document is indexed once into [`IntrospectionSchema`]; each root
//! introspection field of an operation is then executed against that index by a small
//! executor that implements the parts of GraphQL execution introspection needs: field
//! collection (aliases, fragments, `@skip`/`@include`), field merging and `__typename`.
//!
//! What is listed follows the GraphQL specification (October 2021, plus `isOneOf` and
//! argument/input-field deprecation from the current draft) and graphql-js' ordering:
//! the document's types in document order, each built-in scalar right after the first type
//! that references it, then the introspection types. Built-in scalars that nothing
//! references are not listed (spec: "must not be included"); `String` and `Boolean` always
//! are, since the introspection types use them. The built-in scalars, introspection types
//! and built-in directives always come from the canonical definitions below, whatever
//! copies of them the API schema document carries.

mod size;

use std::collections::{HashMap, HashSet};

use graphql_tools::parser::parse_schema;
use graphql_tools::static_graphql::{query, schema};
use serde_json::{Map, Value};

/// `static_graphql` has no alias for type extensions.
type TypeExtension = schema::TypeExtension<'static, String>;

/// The reason `@deprecated` implies when none is given.
const DEFAULT_DEPRECATION_REASON: &str = "No longer supported";

/// The scalars every GraphQL schema has.
const BUILTIN_SCALARS: [&str; 5] = ["Int", "Float", "String", "Boolean", "ID"];

/// The directives every GraphQL schema has, in the order graphql-js lists them.
const BUILTIN_DIRECTIVES: [&str; 5] = ["include", "skip", "deprecated", "specifiedBy", "oneOf"];

/// Canonical definitions of the built-in scalars, introspection types and built-in
/// directives (descriptions as graphql-js 16 words them).
const BUILTIN_SDL: &str = r#"
"The `Int` scalar type represents non-fractional signed whole numeric values. Int can represent values between -(2^31) and 2^31 - 1."
scalar Int

"The `Float` scalar type represents signed double-precision fractional values as specified by [IEEE 754](https://en.wikipedia.org/wiki/IEEE_floating_point)."
scalar Float

"The `String` scalar type represents textual data, represented as UTF-8 character sequences. The String type is most often used by GraphQL to represent free-form human-readable text."
scalar String

"The `Boolean` scalar type represents `true` or `false`."
scalar Boolean

"""
The `ID` scalar type represents a unique identifier, often used to refetch an object or as key for a cache. The ID type appears in a JSON response as a String; however, it is not intended to be human-readable. When expected as an input type, any string (such as `"4"`) or integer (such as `4`) input value will be accepted as an ID.
"""
scalar ID

"A GraphQL Schema defines the capabilities of a GraphQL server. It exposes all available types and directives on the server, as well as the entry points for query, mutation, and subscription operations."
type __Schema {
  description: String
  "A list of all types supported by this server."
  types: [__Type!]!
  "The type that query operations will be rooted at."
  queryType: __Type!
  "If this server supports mutation, the type that mutation operations will be rooted at."
  mutationType: __Type
  "If this server support subscription, the type that subscription operations will be rooted at."
  subscriptionType: __Type
  "A list of all directives supported by this server."
  directives: [__Directive!]!
}

"""
The fundamental unit of any GraphQL Schema is the type. There are many kinds of types in GraphQL as represented by the `__TypeKind` enum.

Depending on the kind of a type, certain fields describe information about that type. Scalar types provide no information beyond a name, description and optional `specifiedByURL`, while Enum types provide their values. Object and Interface types provide the fields they describe. Abstract types, Union and Interface, provide the Object types possible at runtime. List and NonNull types compose other types.
"""
type __Type {
  kind: __TypeKind!
  name: String
  description: String
  specifiedByURL: String
  fields(includeDeprecated: Boolean = false): [__Field!]
  interfaces: [__Type!]
  possibleTypes: [__Type!]
  enumValues(includeDeprecated: Boolean = false): [__EnumValue!]
  inputFields(includeDeprecated: Boolean = false): [__InputValue!]
  ofType: __Type
  isOneOf: Boolean
}

"An enum describing what kind of type a given `__Type` is."
enum __TypeKind {
  "Indicates this type is a scalar."
  SCALAR
  "Indicates this type is an object. `fields` and `interfaces` are valid fields."
  OBJECT
  "Indicates this type is an interface. `fields`, `interfaces`, and `possibleTypes` are valid fields."
  INTERFACE
  "Indicates this type is a union. `possibleTypes` is a valid field."
  UNION
  "Indicates this type is an enum. `enumValues` is a valid field."
  ENUM
  "Indicates this type is an input object. `inputFields` is a valid field."
  INPUT_OBJECT
  "Indicates this type is a list. `ofType` is a valid field."
  LIST
  "Indicates this type is a non-null. `ofType` is a valid field."
  NON_NULL
}

"Object and Interface types are described by a list of Fields, each of which has a name, potentially a list of arguments, and a return type."
type __Field {
  name: String!
  description: String
  args(includeDeprecated: Boolean = false): [__InputValue!]!
  type: __Type!
  isDeprecated: Boolean!
  deprecationReason: String
}

"Arguments provided to Fields or Directives and the input fields of an InputObject are represented as Input Values which describe their type and optionally a default value."
type __InputValue {
  name: String!
  description: String
  type: __Type!
  "A GraphQL-formatted string representing the default value for this input value."
  defaultValue: String
  isDeprecated: Boolean!
  deprecationReason: String
}

"One possible value for a given Enum. Enum values are unique values, not a placeholder for a string or numeric value. However an Enum value is returned in a JSON response as a string."
type __EnumValue {
  name: String!
  description: String
  isDeprecated: Boolean!
  deprecationReason: String
}

"""
A Directive provides a way to describe alternate runtime execution and type validation behavior in a GraphQL document.

In some cases, you need to provide options to alter GraphQL's execution behavior in ways field arguments will not suffice, such as conditionally including or skipping a field. Directives provide this by describing additional information to the executor.
"""
type __Directive {
  name: String!
  description: String
  isRepeatable: Boolean!
  locations: [__DirectiveLocation!]!
  args(includeDeprecated: Boolean = false): [__InputValue!]!
}

"A Directive can be adjacent to many parts of the GraphQL language, a __DirectiveLocation describes one such possible adjacencies."
enum __DirectiveLocation {
  "Location adjacent to a query operation."
  QUERY
  "Location adjacent to a mutation operation."
  MUTATION
  "Location adjacent to a subscription operation."
  SUBSCRIPTION
  "Location adjacent to a field."
  FIELD
  "Location adjacent to a fragment definition."
  FRAGMENT_DEFINITION
  "Location adjacent to a fragment spread."
  FRAGMENT_SPREAD
  "Location adjacent to an inline fragment."
  INLINE_FRAGMENT
  "Location adjacent to a variable definition."
  VARIABLE_DEFINITION
  "Location adjacent to a schema definition."
  SCHEMA
  "Location adjacent to a scalar definition."
  SCALAR
  "Location adjacent to an object type definition."
  OBJECT
  "Location adjacent to a field definition."
  FIELD_DEFINITION
  "Location adjacent to an argument definition."
  ARGUMENT_DEFINITION
  "Location adjacent to an interface definition."
  INTERFACE
  "Location adjacent to a union definition."
  UNION
  "Location adjacent to an enum definition."
  ENUM
  "Location adjacent to an enum value definition."
  ENUM_VALUE
  "Location adjacent to an input object type definition."
  INPUT_OBJECT
  "Location adjacent to an input object field definition."
  INPUT_FIELD_DEFINITION
}

"Directs the executor to include this field or fragment only when the `if` argument is true."
directive @include(
  "Included when true."
  if: Boolean!
) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT

"Directs the executor to skip this field or fragment when the `if` argument is true."
directive @skip(
  "Skipped when true."
  if: Boolean!
) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT

"Marks an element of a GraphQL schema as no longer supported."
directive @deprecated(
  "Explains why this element was deprecated, usually also including a suggestion for how to access supported similar data. Formatted using the Markdown syntax, as specified by [CommonMark](https://commonmark.org/)."
  reason: String = "No longer supported"
) on FIELD_DEFINITION | ARGUMENT_DEFINITION | INPUT_FIELD_DEFINITION | ENUM_VALUE

"Exposes a URL that specifies the behavior of this scalar."
directive @specifiedBy(
  "The URL that specifies the behavior of this scalar."
  url: String!
) on SCALAR

"Indicates exactly one field must be supplied and this field must not be `null`."
directive @oneOf on INPUT_OBJECT
"#;

/// The kind of a named type, as `__TypeKind` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Scalar,
    Object,
    Interface,
    Union,
    Enum,
    InputObject,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Scalar => "SCALAR",
            Kind::Object => "OBJECT",
            Kind::Interface => "INTERFACE",
            Kind::Union => "UNION",
            Kind::Enum => "ENUM",
            Kind::InputObject => "INPUT_OBJECT",
        }
    }

    fn has_fields(self) -> bool {
        matches!(self, Kind::Object | Kind::Interface)
    }
}

/// A named type, with everything introspection can ask of it.
#[derive(Debug)]
struct TypeDef {
    kind: Kind,
    name: String,
    description: Option<String>,
    specified_by_url: Option<String>,
    fields: Vec<FieldDef>,
    interfaces: Vec<String>,
    /// Union members, or the object types implementing an interface.
    possible_types: Vec<String>,
    enum_values: Vec<EnumValueDef>,
    input_fields: Vec<InputValueDef>,
    one_of: bool,
}

impl TypeDef {
    fn new(kind: Kind, name: &str, description: &Option<String>) -> Self {
        TypeDef {
            kind,
            name: name.to_owned(),
            description: description.clone(),
            specified_by_url: None,
            fields: Vec::new(),
            interfaces: Vec::new(),
            possible_types: Vec::new(),
            enum_values: Vec::new(),
            input_fields: Vec::new(),
            one_of: false,
        }
    }
}

/// A field of an object or interface type.
#[derive(Debug)]
struct FieldDef {
    name: String,
    description: Option<String>,
    args: Vec<InputValueDef>,
    ty: schema::Type,
    deprecation: Option<String>,
}

/// An argument or input field; the default value is already printed as GraphQL.
#[derive(Debug)]
struct InputValueDef {
    name: String,
    description: Option<String>,
    ty: schema::Type,
    default_value: Option<String>,
    deprecation: Option<String>,
}

/// A value of an enum type.
#[derive(Debug)]
struct EnumValueDef {
    name: String,
    description: Option<String>,
    deprecation: Option<String>,
}

/// A directive definition.
#[derive(Debug)]
struct DirectiveDef {
    name: String,
    description: Option<String>,
    args: Vec<InputValueDef>,
    repeatable: bool,
    locations: Vec<&'static str>,
}

/// Schema elements that `@deprecated` can mark.
trait Deprecatable {
    fn deprecation(&self) -> Option<&str>;
}

impl Deprecatable for FieldDef {
    fn deprecation(&self) -> Option<&str> {
        self.deprecation.as_deref()
    }
}

impl Deprecatable for InputValueDef {
    fn deprecation(&self) -> Option<&str> {
        self.deprecation.as_deref()
    }
}

impl Deprecatable for EnumValueDef {
    fn deprecation(&self) -> Option<&str> {
        self.deprecation.as_deref()
    }
}

/// The API schema, indexed for introspection. Built once per loaded supergraph.
#[derive(Debug)]
pub struct IntrospectionSchema {
    /// Every named type, in the order `__schema.types` lists them.
    types: Vec<TypeDef>,
    by_name: HashMap<String, usize>,
    directives: Vec<DirectiveDef>,
    query_type: Option<String>,
    mutation_type: Option<String>,
    subscription_type: Option<String>,
}

impl IntrospectionSchema {
    /// Indexes `api_schema`, the public schema (no federation/join directives, no
    /// `@inaccessible` elements).
    ///
    /// `__`-prefixed fields (`__schema`, `__type` on Query) and any definitions of the
    /// introspection types, built-in scalars or built-in directives in the document are
    /// ignored in favour of the canonical ones; type extensions are merged into their types.
    /// Root types come from the `schema { … }` definition if there is one, else from the
    /// object types named `Query`, `Mutation` and `Subscription`.
    pub fn new(api_schema: &schema::Document) -> Self {
        let doc_types = document_types(api_schema);
        let (builtin_types, builtin_directives) = builtin_definitions();
        let uses_one_of = doc_types.iter().any(|t| t.one_of);
        let directives = merge_directives(document_directives(api_schema), builtin_directives, uses_one_of);
        let mut types = order_types(doc_types, builtin_types, &directives);
        fill_implementations(&mut types);
        let by_name: HashMap<String, usize> = types.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        let [query_type, mutation_type, subscription_type] = root_type_names(api_schema);
        IntrospectionSchema { types, by_name, directives, query_type, mutation_type, subscription_type }
    }

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

    fn named(&self, name: &str) -> Option<&TypeDef> {
        self.by_name.get(name).and_then(|&i| self.types.get(i))
    }

    /// The introspection node for a type reference, or `None` if it names no known type.
    fn type_node<'s>(&'s self, ty: &'s schema::Type) -> Option<TypeNode<'s>> {
        match ty {
            schema::Type::NamedType(name) => self.named(name).map(TypeNode::Named),
            schema::Type::ListType(inner) => Some(TypeNode::List(inner)),
            schema::Type::NonNullType(inner) => Some(TypeNode::NonNull(inner)),
        }
    }

    fn named_nodes<'s>(&'s self, names: &[String]) -> Vec<Node<'s>> {
        names.iter().filter_map(|n| self.named(n)).map(|t| Node::Type(TypeNode::Named(t))).collect()
    }
}

// ---------------------------------------------------------------------------------------
// Indexing
// ---------------------------------------------------------------------------------------

/// Whether the document's own definition of this type is replaced by a canonical one.
fn is_builtin_type(name: &str) -> bool {
    name.starts_with("__") || BUILTIN_SCALARS.contains(&name)
}

/// The document's types, in document order, extensions merged, minus built-ins.
fn document_types(doc: &schema::Document) -> Vec<TypeDef> {
    let mut types: Vec<TypeDef> = Vec::new();
    let mut index = HashMap::new();
    for definition in &doc.definitions {
        if let schema::Definition::TypeDefinition(t) = definition {
            let def = type_def(t);
            if !is_builtin_type(&def.name) && !index.contains_key(&def.name) {
                index.insert(def.name.clone(), types.len());
                types.push(def);
            }
        }
    }
    for definition in &doc.definitions {
        if let schema::Definition::TypeExtension(ext) = definition
            && let Some(def) = index.get(extension_name(ext)).and_then(|&i| types.get_mut(i))
        {
            apply_extension(def, ext);
        }
    }
    types
}

/// The document's directive definitions, in document order, minus built-ins and repeats.
fn document_directives(doc: &schema::Document) -> Vec<DirectiveDef> {
    let mut names = HashSet::new();
    doc.definitions
        .iter()
        .filter_map(|definition| match definition {
            schema::Definition::DirectiveDefinition(d) => Some(d),
            _ => None,
        })
        .filter(|d| !BUILTIN_DIRECTIVES.contains(&d.name.as_str()) && names.insert(d.name.as_str()))
        .map(directive_def)
        .collect()
}

/// The canonical built-in scalars and introspection types (by name) and built-in directives.
fn builtin_definitions() -> (HashMap<String, TypeDef>, Vec<DirectiveDef>) {
    let mut types = HashMap::new();
    let mut directives = Vec::new();
    let Ok(doc) = parse_schema::<String>(BUILTIN_SDL) else { return (types, directives) };
    for definition in &doc.definitions {
        match definition {
            schema::Definition::TypeDefinition(t) => {
                let def = type_def(t);
                types.insert(def.name.clone(), def);
            }
            schema::Definition::DirectiveDefinition(d) => directives.push(directive_def(d)),
            _ => {}
        }
    }
    (types, directives)
}

/// The document's directives, then the built-ins (`@oneOf` only if some input type uses it).
fn merge_directives(
    mut directives: Vec<DirectiveDef>,
    builtins: Vec<DirectiveDef>,
    uses_one_of: bool,
) -> Vec<DirectiveDef> {
    directives.extend(builtins.into_iter().filter(|d| uses_one_of || d.name != "oneOf"));
    directives
}

/// Orders types as graphql-js' `GraphQLSchema` does: the document's types in order, each
/// followed by the built-in types it is first to reference (depth first), then those the
/// directives' arguments reference, then the introspection types reachable from `__Schema`.
fn order_types(
    doc_types: Vec<TypeDef>,
    builtins: HashMap<String, TypeDef>,
    directives: &[DirectiveDef],
) -> Vec<TypeDef> {
    let seen = doc_types.iter().map(|t| t.name.clone()).collect();
    let mut order = TypeOrder { pool: builtins, seen, out: Vec::new() };
    for def in doc_types {
        order.push(def);
    }
    for arg in directives.iter().flat_map(|d| &d.args) {
        order.reference(named_type(&arg.ty));
    }
    order.reference("__Schema");
    order.out
}

/// Depth-first collection of referenced types (graphql-js' `collectReferencedTypes`).
struct TypeOrder {
    /// Built-in types not listed yet.
    pool: HashMap<String, TypeDef>,
    seen: HashSet<String>,
    out: Vec<TypeDef>,
}

impl TypeOrder {
    fn push(&mut self, def: TypeDef) {
        let references = referenced_type_names(&def);
        self.out.push(def);
        for name in references {
            self.reference(&name);
        }
    }

    fn reference(&mut self, name: &str) {
        if self.seen.insert(name.to_owned())
            && let Some(def) = self.pool.remove(name)
        {
            self.push(def);
        }
    }
}

/// The types a type definition refers to, in graphql-js' traversal order.
fn referenced_type_names(def: &TypeDef) -> Vec<String> {
    let mut names = def.interfaces.clone();
    if def.kind == Kind::Union {
        names.extend(def.possible_types.iter().cloned());
    }
    for field in &def.fields {
        names.push(named_type(&field.ty).to_owned());
        names.extend(field.args.iter().map(|a| named_type(&a.ty).to_owned()));
    }
    names.extend(def.input_fields.iter().map(|f| named_type(&f.ty).to_owned()));
    names
}

/// Sets each interface's possible types: the object types implementing it, in type order.
fn fill_implementations(types: &mut [TypeDef]) {
    let mut implementations: HashMap<String, Vec<String>> = HashMap::new();
    for object in types.iter().filter(|t| t.kind == Kind::Object) {
        for interface in &object.interfaces {
            implementations.entry(interface.clone()).or_default().push(object.name.clone());
        }
    }
    for interface in types.iter_mut().filter(|t| t.kind == Kind::Interface) {
        interface.possible_types = implementations.remove(&interface.name).unwrap_or_default();
    }
}

/// Query, mutation and subscription type names.
fn root_type_names(doc: &schema::Document) -> [Option<String>; 3] {
    let schema_definition = doc.definitions.iter().find_map(|d| match d {
        schema::Definition::SchemaDefinition(s) => Some(s),
        _ => None,
    });
    if let Some(s) = schema_definition {
        return [s.query.clone(), s.mutation.clone(), s.subscription.clone()];
    }
    let object_named = |name: &str| {
        doc.definitions.iter().any(
            |d| matches!(d, schema::Definition::TypeDefinition(schema::TypeDefinition::Object(o)) if o.name == name),
        )
    };
    ["Query", "Mutation", "Subscription"].map(|name| object_named(name).then(|| name.to_owned()))
}

fn type_def(definition: &schema::TypeDefinition) -> TypeDef {
    use schema::TypeDefinition as D;
    match definition {
        D::Scalar(s) => TypeDef {
            specified_by_url: specified_by_url(&s.directives),
            ..TypeDef::new(Kind::Scalar, &s.name, &s.description)
        },
        D::Object(o) => TypeDef {
            fields: field_defs(&o.fields),
            interfaces: o.implements_interfaces.clone(),
            ..TypeDef::new(Kind::Object, &o.name, &o.description)
        },
        D::Interface(i) => TypeDef {
            fields: field_defs(&i.fields),
            interfaces: i.implements_interfaces.clone(),
            ..TypeDef::new(Kind::Interface, &i.name, &i.description)
        },
        D::Union(u) => {
            TypeDef { possible_types: u.types.clone(), ..TypeDef::new(Kind::Union, &u.name, &u.description) }
        }
        D::Enum(e) => TypeDef {
            enum_values: e.values.iter().map(enum_value_def).collect(),
            ..TypeDef::new(Kind::Enum, &e.name, &e.description)
        },
        D::InputObject(i) => TypeDef {
            input_fields: i.fields.iter().map(input_value_def).collect(),
            one_of: has_directive(&i.directives, "oneOf"),
            ..TypeDef::new(Kind::InputObject, &i.name, &i.description)
        },
    }
}

fn extension_name(extension: &TypeExtension) -> &str {
    use schema::TypeExtension as E;
    match extension {
        E::Scalar(s) => &s.name,
        E::Object(o) => &o.name,
        E::Interface(i) => &i.name,
        E::Union(u) => &u.name,
        E::Enum(e) => &e.name,
        E::InputObject(i) => &i.name,
    }
}

fn apply_extension(def: &mut TypeDef, extension: &TypeExtension) {
    use schema::TypeExtension as E;
    match extension {
        E::Scalar(s) => {
            if let Some(url) = specified_by_url(&s.directives) {
                def.specified_by_url = Some(url);
            }
        }
        E::Object(o) => {
            def.interfaces.extend(o.implements_interfaces.iter().cloned());
            def.fields.extend(field_defs(&o.fields));
        }
        E::Interface(i) => {
            def.interfaces.extend(i.implements_interfaces.iter().cloned());
            def.fields.extend(field_defs(&i.fields));
        }
        E::Union(u) => def.possible_types.extend(u.types.iter().cloned()),
        E::Enum(e) => def.enum_values.extend(e.values.iter().map(enum_value_def)),
        E::InputObject(i) => {
            def.input_fields.extend(i.fields.iter().map(input_value_def));
            def.one_of |= has_directive(&i.directives, "oneOf");
        }
    }
}

/// Fields of an object or interface, without the reserved `__`-prefixed ones.
fn field_defs(fields: &[schema::Field]) -> Vec<FieldDef> {
    fields
        .iter()
        .filter(|f| !f.name.starts_with("__"))
        .map(|f| FieldDef {
            name: f.name.clone(),
            description: f.description.clone(),
            args: f.arguments.iter().map(input_value_def).collect(),
            ty: f.field_type.clone(),
            deprecation: deprecation_reason(&f.directives),
        })
        .collect()
}

fn input_value_def(value: &schema::InputValue) -> InputValueDef {
    InputValueDef {
        name: value.name.clone(),
        description: value.description.clone(),
        ty: value.value_type.clone(),
        default_value: value.default_value.as_ref().map(print_literal),
        deprecation: deprecation_reason(&value.directives),
    }
}

fn enum_value_def(value: &schema::EnumValue) -> EnumValueDef {
    EnumValueDef {
        name: value.name.clone(),
        description: value.description.clone(),
        deprecation: deprecation_reason(&value.directives),
    }
}

fn directive_def(directive: &schema::DirectiveDefinition) -> DirectiveDef {
    DirectiveDef {
        name: directive.name.clone(),
        description: directive.description.clone(),
        args: directive.arguments.iter().map(input_value_def).collect(),
        repeatable: directive.repeatable,
        locations: directive.locations.iter().map(|l| l.as_str()).collect(),
    }
}

fn has_directive(directives: &[schema::Directive], name: &str) -> bool {
    directives.iter().any(|d| d.name == name)
}

fn directive_argument<'d>(
    directives: &'d [schema::Directive],
    directive: &str,
    argument: &str,
) -> Option<&'d schema::Value> {
    let found = directives.iter().find(|d| d.name == directive)?;
    found.arguments.iter().find(|(name, _)| name == argument).map(|(_, value)| value)
}

/// The `@deprecated` reason; an explicit `reason: null` means not deprecated (as graphql-js).
fn deprecation_reason(directives: &[schema::Directive]) -> Option<String> {
    if !has_directive(directives, "deprecated") {
        return None;
    }
    match directive_argument(directives, "deprecated", "reason") {
        Some(schema::Value::String(reason)) => Some(reason.clone()),
        Some(schema::Value::Null) => None,
        _ => Some(DEFAULT_DEPRECATION_REASON.to_owned()),
    }
}

fn specified_by_url(directives: &[schema::Directive]) -> Option<String> {
    match directive_argument(directives, "specifiedBy", "url") {
        Some(schema::Value::String(url)) => Some(url.clone()),
        _ => None,
    }
}

fn named_type(ty: &schema::Type) -> &str {
    match ty {
        schema::Type::NamedType(name) => name,
        schema::Type::ListType(inner) | schema::Type::NonNullType(inner) => named_type(inner),
    }
}

/// Prints a literal as GraphQL: `"abc"`, `10`, `1.5`, `[1, 2]`, `{a: 1}`, `ENUM_VALUE`, `null`.
fn print_literal(value: &schema::Value) -> String {
    match value {
        schema::Value::Variable(name) => format!("${name}"),
        schema::Value::Int(number) => number.as_i64().map(|n| n.to_string()).unwrap_or_default(),
        schema::Value::Float(number) => number.to_string(),
        schema::Value::String(text) => quote(text),
        schema::Value::Boolean(flag) => flag.to_string(),
        schema::Value::Null => "null".to_owned(),
        schema::Value::Enum(name) => name.clone(),
        schema::Value::List(items) => format!("[{}]", items.iter().map(print_literal).collect::<Vec<_>>().join(", ")),
        schema::Value::Object(fields) => {
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {}", print_literal(v))).collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// A GraphQL string literal, escaped as graphql-js' printer does.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c <= '\u{1f}' || ('\u{7f}'..='\u{9f}').contains(&c) => {
                out.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------------------

/// A value of one of the introspection object types.
#[derive(Debug, Clone, Copy)]
enum Node<'s> {
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
enum TypeNode<'s> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use graphql_tools::parser::parse_query;
    use serde_json::json;

    const SDL: &str = r#"
schema { query: Query mutation: Mutation }

"The root query"
type Query {
  me: User
  user("The user id" id: ID!, archived: Boolean = false): User
  search(term: String!, first: Int = 10, tags: [String!] = ["a", "b"], filter: Filter = {kind: ACTIVE, limit: 5}): [SearchResult!]!
  node(id: ID!): Node
  pick(by: Pick!, legacy: String @deprecated(reason: "Use by")): User
  legacy: String @deprecated
  oldMe: User @deprecated(reason: "Use `me`.")
  __schema: __Schema!
  __type(name: String!): __Type
}

type Mutation {
  rename(name: String! = "abc", weight: Float = 1.5): User
}

"Something with an id"
interface Node {
  id: ID!
}

type User implements Node {
  id: ID!
  name: String!
  friends: [User!]!
  status: Status
  joined: Date
}

type Post implements Node @cached(ttl: 5) {
  id: ID!
  title: String
  author: User
}

union SearchResult = User | Post

enum Status {
  ACTIVE
  "Not active"
  INACTIVE @deprecated(reason: "Use ARCHIVED")
  ARCHIVED
  BANNED @deprecated
}

input Filter {
  kind: Status = ACTIVE
  limit: Int = 20
  query: String = "x\"y"
  old: String @deprecated(reason: "no")
}

input Pick @oneOf {
  id: ID
  name: String
}

"An RFC 3339 date"
scalar Date @specifiedBy(url: "https://tools.ietf.org/html/rfc3339")

"Caches a field"
directive @cached(ttl: Int = 60) repeatable on FIELD_DEFINITION | OBJECT

# Copies of built-ins, as a consumer schema may carry them: ignored.
type __Schema { description: String }
scalar Int
directive @skip(if: Boolean!) on FIELD
"#;

    /// What graphql-js' `getIntrospectionQuery({ descriptions: true, specifiedByUrl: true,
    /// directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true })` produces.
    const FULL_INTROSPECTION_QUERY: &str = r#"
    query IntrospectionQuery {
      __schema {
        description
        queryType { name }
        mutationType { name }
        subscriptionType { name }
        types {
          ...FullType
        }
        directives {
          name
          description
          isRepeatable
          locations
          args(includeDeprecated: true) {
            ...InputValue
          }
        }
      }
    }

    fragment FullType on __Type {
      kind
      name
      description
      specifiedByURL
      fields(includeDeprecated: true) {
        name
        description
        args(includeDeprecated: true) {
          ...InputValue
        }
        type {
          ...TypeRef
        }
        isDeprecated
        deprecationReason
      }
      inputFields(includeDeprecated: true) {
        ...InputValue
      }
      interfaces {
        ...TypeRef
      }
      enumValues(includeDeprecated: true) {
        name
        description
        isDeprecated
        deprecationReason
      }
      possibleTypes {
        ...TypeRef
      }
    }

    fragment InputValue on __InputValue {
      name
      description
      type { ...TypeRef }
      defaultValue
      isDeprecated
      deprecationReason
    }

    fragment TypeRef on __Type {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
                ofType {
                  kind
                  name
                  ofType {
                    kind
                    name
                    ofType {
                      kind
                      name
                      ofType {
                        kind
                        name
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    "#;

    fn build(sdl: &str) -> IntrospectionSchema {
        let document = parse_schema::<String>(sdl).expect("schema parses").into_static();
        IntrospectionSchema::new(&document)
    }

    fn test_schema() -> IntrospectionSchema {
        build(SDL)
    }

    /// Runs every root introspection field of the document's operation, keyed by response key.
    fn run_with(schema: &IntrospectionSchema, operation: &str, variables: Value) -> Result<Value, String> {
        let document = parse_query::<String>(operation).expect("query parses").into_static();
        let mut fragments = HashMap::new();
        let mut roots = Vec::new();
        for definition in document.definitions {
            match definition {
                query::Definition::Fragment(f) => {
                    fragments.insert(f.name.clone(), f);
                }
                query::Definition::Operation(query::OperationDefinition::Query(q)) => roots = q.selection_set.items,
                query::Definition::Operation(query::OperationDefinition::SelectionSet(s)) => roots = s.items,
                query::Definition::Operation(_) => panic!("only queries are introspected"),
            }
        }
        let variables = variables.as_object().cloned().unwrap_or_default();
        let mut data = Map::new();
        for selection in roots {
            let query::Selection::Field(field) = selection else { panic!("root fields only") };
            let key = field.alias.clone().unwrap_or_else(|| field.name.clone());
            data.insert(key, schema.resolve_root_field(&field, &fragments, &variables)?);
        }
        Ok(Value::Object(data))
    }

    fn run(schema: &IntrospectionSchema, operation: &str) -> Value {
        run_with(schema, operation, json!({})).expect("introspection succeeds")
    }

    fn names(value: &Value) -> Vec<&str> {
        value.as_array().expect("a list").iter().map(|item| item["name"].as_str().expect("a name")).collect()
    }

    #[test]
    fn builtin_sdl_parses() {
        let document = parse_schema::<String>(BUILTIN_SDL).expect("built-in SDL parses");
        assert_eq!(document.definitions.len(), 5 + 8 + 5);
    }

    #[test]
    fn root_operation_types() {
        let result = run(
            &test_schema(),
            "{ __schema { queryType { name } mutationType { name } subscriptionType { name } description } }",
        );
        let expected = json!({"__schema": {
            "queryType": {"name": "Query"},
            "mutationType": {"name": "Mutation"},
            "subscriptionType": null,
            "description": null,
        }});
        assert_eq!(result, expected);
    }

    #[test]
    fn root_types_default_to_conventional_names() {
        let schema = build("type Query { a: Int } type Subscription { b: Int } type Mutation2 { c: Int }");
        let result =
            run(&schema, "{ __schema { queryType { name } mutationType { name } subscriptionType { name } } }");
        let expected = json!({"__schema": {
            "queryType": {"name": "Query"},
            "mutationType": null,
            "subscriptionType": {"name": "Subscription"},
        }});
        assert_eq!(result, expected);
    }

    #[test]
    fn schema_definition_overrides_conventional_names() {
        let schema = build("schema { query: Root } type Root { a: Int } type Mutation { b: Int }");
        let result = run(&schema, "{ __schema { queryType { name } mutationType { name } } }");
        assert_eq!(result, json!({"__schema": {"queryType": {"name": "Root"}, "mutationType": null}}));
    }

    #[test]
    fn object_type_fields_with_wrappers() {
        let result = run(
            &test_schema(),
            r#"{ __type(name: "User") { kind name fields { name type { kind name ofType { kind name } } } } }"#,
        );
        let expected = json!({"__type": {
            "kind": "OBJECT",
            "name": "User",
            "fields": [
                {"name": "id", "type": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "SCALAR", "name": "ID"}}},
                {"name": "name", "type": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "SCALAR", "name": "String"}}},
                {"name": "friends", "type": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "LIST", "name": null}}},
                {"name": "status", "type": {"kind": "ENUM", "name": "Status", "ofType": null}},
                {"name": "joined", "type": {"kind": "SCALAR", "name": "Date", "ofType": null}},
            ],
        }});
        assert_eq!(result, expected);
    }

    #[test]
    fn nested_wrappers_unwrap_to_the_named_type() {
        let result = run(
            &test_schema(),
            r#"{ __type(name: "User") { fields { type { kind ofType { kind ofType { kind ofType { kind name ofType { kind } } } } } } } }"#,
        );
        let friends = &result["__type"]["fields"][2]["type"];
        let expected = json!({"kind": "NON_NULL", "ofType": {"kind": "LIST", "ofType": {"kind": "NON_NULL",
            "ofType": {"kind": "OBJECT", "name": "User", "ofType": null}}}});
        assert_eq!(friends, &expected);
    }

    #[test]
    fn deprecated_fields_hidden_unless_asked_for() {
        let result = run(
            &test_schema(),
            r#"{
              hidden: __type(name: "Query") { fields { name } }
              shown: __type(name: "Query") { fields(includeDeprecated: true) { name isDeprecated deprecationReason } }
            }"#,
        );
        assert_eq!(names(&result["hidden"]["fields"]), ["me", "user", "search", "node", "pick"]);
        let shown = &result["shown"]["fields"];
        assert_eq!(names(shown), ["me", "user", "search", "node", "pick", "legacy", "oldMe"]);
        assert_eq!(shown[0], json!({"name": "me", "isDeprecated": false, "deprecationReason": null}));
        assert_eq!(
            shown[5],
            json!({"name": "legacy", "isDeprecated": true, "deprecationReason": "No longer supported"})
        );
        assert_eq!(shown[6], json!({"name": "oldMe", "isDeprecated": true, "deprecationReason": "Use `me`."}));
    }

    #[test]
    fn deprecated_enum_values_arguments_and_input_fields() {
        let result = run(
            &test_schema(),
            r#"{
              status: __type(name: "Status") {
                active: enumValues { name }
                all: enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
              }
              filter: __type(name: "Filter") { a: inputFields { name } b: inputFields(includeDeprecated: true) { name } }
              query: __type(name: "Query") { fields { name a: args { name } b: args(includeDeprecated: true) { name } } }
            }"#,
        );
        assert_eq!(names(&result["status"]["active"]), ["ACTIVE", "ARCHIVED"]);
        let expected = json!([
            {"name": "ACTIVE", "description": null, "isDeprecated": false, "deprecationReason": null},
            {"name": "INACTIVE", "description": "Not active", "isDeprecated": true, "deprecationReason": "Use ARCHIVED"},
            {"name": "ARCHIVED", "description": null, "isDeprecated": false, "deprecationReason": null},
            {"name": "BANNED", "description": null, "isDeprecated": true, "deprecationReason": "No longer supported"},
        ]);
        assert_eq!(result["status"]["all"], expected);
        assert_eq!(names(&result["filter"]["a"]), ["kind", "limit", "query"]);
        assert_eq!(names(&result["filter"]["b"]), ["kind", "limit", "query", "old"]);
        let pick = &result["query"]["fields"][4];
        assert_eq!(names(&pick["a"]), ["by"]);
        assert_eq!(names(&pick["b"]), ["by", "legacy"]);
    }

    #[test]
    fn include_deprecated_from_a_variable() {
        let operation =
            r#"query ($all: Boolean) { __type(name: "Status") { enumValues(includeDeprecated: $all) { name } } }"#;
        let schema = test_schema();
        let all = run_with(&schema, operation, json!({"all": true})).expect("runs");
        assert_eq!(names(&all["__type"]["enumValues"]), ["ACTIVE", "INACTIVE", "ARCHIVED", "BANNED"]);
        let unset = run_with(&schema, operation, json!({})).expect("runs");
        assert_eq!(names(&unset["__type"]["enumValues"]), ["ACTIVE", "ARCHIVED"]);
    }

    #[test]
    fn possible_types_of_interface_and_union() {
        let result = run(
            &test_schema(),
            r#"{
              node: __type(name: "Node") { kind description possibleTypes { name } interfaces { name } }
              search: __type(name: "SearchResult") { kind possibleTypes { kind name } fields { name } }
              user: __type(name: "User") { interfaces { name } possibleTypes { name } }
            }"#,
        );
        let expected = json!({
            "node": {"kind": "INTERFACE", "description": "Something with an id",
                     "possibleTypes": [{"name": "User"}, {"name": "Post"}], "interfaces": []},
            "search": {"kind": "UNION", "possibleTypes": [{"kind": "OBJECT", "name": "User"}, {"kind": "OBJECT", "name": "Post"}],
                       "fields": null},
            "user": {"interfaces": [{"name": "Node"}], "possibleTypes": null},
        });
        assert_eq!(result, expected);
    }

    #[test]
    fn interfaces_implementing_interfaces() {
        let schema = build(
            "type Query { n: Node } interface Node { id: ID! } interface Named implements Node { id: ID! name: String }
             type Person implements Named & Node { id: ID! name: String }",
        );
        let result = run(
            &schema,
            r#"{ named: __type(name: "Named") { interfaces { name } possibleTypes { name } }
                 node: __type(name: "Node") { possibleTypes { name } } }"#,
        );
        let expected = json!({
            "named": {"interfaces": [{"name": "Node"}], "possibleTypes": [{"name": "Person"}]},
            "node": {"possibleTypes": [{"name": "Person"}]},
        });
        assert_eq!(result, expected);
    }

    #[test]
    fn default_values_printed_as_graphql() {
        let result = run(
            &test_schema(),
            r#"{
              query: __type(name: "Query") { fields { name args { name defaultValue } } }
              mutation: __type(name: "Mutation") { fields { args { name defaultValue } } }
              filter: __type(name: "Filter") { inputFields(includeDeprecated: true) { name defaultValue } }
            }"#,
        );
        let search = &result["query"]["fields"][2];
        assert_eq!(search["name"], "search");
        let expected = json!([
            {"name": "term", "defaultValue": null},
            {"name": "first", "defaultValue": "10"},
            {"name": "tags", "defaultValue": "[\"a\", \"b\"]"},
            {"name": "filter", "defaultValue": "{kind: ACTIVE, limit: 5}"},
        ]);
        assert_eq!(search["args"], expected);
        assert_eq!(result["query"]["fields"][1]["args"][1], json!({"name": "archived", "defaultValue": "false"}));
        let rename = json!([{"name": "name", "defaultValue": "\"abc\""}, {"name": "weight", "defaultValue": "1.5"}]);
        assert_eq!(result["mutation"]["fields"][0]["args"], rename);
        let filter = json!([
            {"name": "kind", "defaultValue": "ACTIVE"},
            {"name": "limit", "defaultValue": "20"},
            {"name": "query", "defaultValue": "\"x\\\"y\""},
            {"name": "old", "defaultValue": null},
        ]);
        assert_eq!(result["filter"]["inputFields"], filter);
    }

    #[test]
    fn literal_printing_escapes_like_graphql_js() {
        let value = schema::Value::Object(vec![
            ("s".to_owned(), schema::Value::String("a\\b\n\u{1}é".to_owned())),
            ("l".to_owned(), schema::Value::List(vec![schema::Value::Null, schema::Value::Float(2.0)])),
            ("e".to_owned(), schema::Value::List(vec![])),
        ]);
        assert_eq!(print_literal(&value), r#"{s: "a\\b\n\u0001é", l: [null, 2], e: []}"#);
    }

    #[test]
    fn aliases_fragments_and_skip_include() {
        let operation = r#"
            query ($skipKind: Boolean!, $withName: Boolean!) {
              t: __type(name: "Post") {
                ...Basics
                kind @skip(if: $skipKind)
                n2: name @include(if: $withName)
                desc: description @skip(if: false)
                ... on __Type { isOneOf }
                ... on __Field { type { name } }
                ... @include(if: false) { specifiedByURL }
                fields { ...FieldBits }
              }
            }
            fragment Basics on __Type { typeName: name }
            fragment FieldBits on __Field { fieldName: name __typename }
        "#;
        let schema = test_schema();
        let result = run_with(&schema, operation, json!({"skipKind": true, "withName": true})).expect("runs");
        let expected = json!({"t": {
            "typeName": "Post",
            "n2": "Post",
            "desc": null,
            "isOneOf": null,
            "fields": [
                {"fieldName": "id", "__typename": "__Field"},
                {"fieldName": "title", "__typename": "__Field"},
                {"fieldName": "author", "__typename": "__Field"},
            ],
        }});
        assert_eq!(result, expected);
        let result = run_with(&schema, operation, json!({"skipKind": false, "withName": false})).expect("runs");
        let keys: Vec<&String> = result["t"].as_object().expect("object").keys().collect();
        assert_eq!(keys, ["typeName", "kind", "desc", "isOneOf", "fields"]);
    }

    #[test]
    fn typename_inside_introspection() {
        let result = run(
            &test_schema(),
            r#"{
              __schema { __typename directives { __typename args { __typename } } }
              __type(name: "Status") { __typename enumValues { __typename } fields { __typename } }
            }"#,
        );
        let schema = &result["__schema"];
        assert_eq!(schema["__typename"], "__Schema");
        assert_eq!(schema["directives"][0]["__typename"], "__Directive");
        assert_eq!(schema["directives"][0]["args"][0]["__typename"], "__InputValue");
        assert_eq!(result["__type"]["__typename"], "__Type");
        assert_eq!(result["__type"]["enumValues"][0]["__typename"], "__EnumValue");
        assert_eq!(result["__type"]["fields"], Value::Null);
    }

    #[test]
    fn unknown_type_is_null() {
        let result = run(&test_schema(), r#"{ __type(name: "Nope") { name } }"#);
        assert_eq!(result, json!({"__type": null}));
    }

    #[test]
    fn type_name_from_a_variable() {
        let operation = r#"query ($n: String!) { __type(name: $n) { name kind } }"#;
        let result = run_with(&test_schema(), operation, json!({"n": "Pick"})).expect("runs");
        assert_eq!(result, json!({"__type": {"name": "Pick", "kind": "INPUT_OBJECT"}}));
    }

    #[test]
    fn errors() {
        let schema = test_schema();
        let error = |operation: &str| run_with(&schema, operation, json!({})).expect_err("fails");
        assert_eq!(error("{ __schema { bogus } }"), "Cannot query field \"bogus\" on type \"__Schema\".");
        assert_eq!(
            error(r#"{ __type(name: "User") { fields { nope } } }"#),
            "Cannot query field \"nope\" on type \"__Field\"."
        );
        assert!(error("{ __type { name } }").contains("\"name\""));
        assert!(error("{ __type(name: 3) { name } }").contains("String"));
        assert!(error("{ __schema { queryType } }").contains("selection of subfields"));
        assert!(error("{ __schema { queryType { name { x } } } }").contains("leaf"));
        assert!(error("{ __schema { ...Missing } }").contains("Missing"));
        assert!(error("query ($x: Boolean!) { __schema { queryType @skip(if: $x) { name } } }").contains("if"));
        let cycle = "{ __schema { types { ...A } } } fragment A on __Type { fields { type { ...B } } }
                     fragment B on __Type { ofType { ...A } }";
        assert!(error(cycle).contains("within itself"));
        let not_root = parse_query::<String>("{ me { id } }").expect("parses").into_static();
        let query::Definition::Operation(query::OperationDefinition::SelectionSet(set)) = &not_root.definitions[0]
        else {
            panic!("a selection set")
        };
        let query::Selection::Field(field) = &set.items[0] else { panic!("a field") };
        assert!(schema.resolve_root_field(field, &HashMap::new(), &Map::new()).is_err());
    }

    #[test]
    fn repeated_fields_merge_their_selections() {
        let result = run(
            &test_schema(),
            r#"{ __type(name: "Node") { fields { name } ... on __Type { fields { description } } name } }"#,
        );
        assert_eq!(result, json!({"__type": {"fields": [{"name": "id", "description": null}], "name": "Node"}}));
    }

    #[test]
    fn scalars_specified_by_and_one_of() {
        let result = run(
            &test_schema(),
            r#"{
              date: __type(name: "Date") { kind description specifiedByURL isOneOf }
              string: __type(name: "String") { kind specifiedByURL description }
              pick: __type(name: "Pick") { isOneOf specifiedByURL }
              filter: __type(name: "Filter") { isOneOf }
            }"#,
        );
        let expected = json!({
            "date": {"kind": "SCALAR", "description": "An RFC 3339 date",
                     "specifiedByURL": "https://tools.ietf.org/html/rfc3339", "isOneOf": null},
            "string": {"kind": "SCALAR", "specifiedByURL": null, "description": "The `String` scalar type represents textual data, represented as UTF-8 character sequences. The String type is most often used by GraphQL to represent free-form human-readable text."},
            "pick": {"isOneOf": true, "specifiedByURL": null},
            "filter": {"isOneOf": false},
        });
        assert_eq!(result, expected);
    }

    #[test]
    fn types_in_graphql_js_order() {
        let result = run(&test_schema(), "{ __schema { types { name } } }");
        let expected = [
            "Query",
            "ID",
            "Boolean",
            "String",
            "Int",
            "Mutation",
            "Float",
            "Node",
            "User",
            "Post",
            "SearchResult",
            "Status",
            "Filter",
            "Pick",
            "Date",
            "__Schema",
            "__Type",
            "__TypeKind",
            "__Field",
            "__InputValue",
            "__EnumValue",
            "__Directive",
            "__DirectiveLocation",
        ];
        assert_eq!(names(&result["__schema"]["types"]), expected);
    }

    #[test]
    fn unreferenced_builtin_scalars_are_not_listed() {
        let schema = build("type Query { a: Int } scalar Float scalar ID");
        let result = run(&schema, r#"{ __schema { types { name } } float: __type(name: "Float") { name } }"#);
        let listed = names(&result["__schema"]["types"]);
        assert_eq!(&listed[..3], ["Query", "Int", "Boolean"]);
        assert!(listed.contains(&"String"));
        assert!(!listed.contains(&"Float") && !listed.contains(&"ID"));
        assert_eq!(result["float"], Value::Null);
    }

    #[test]
    fn directives_listed_once_with_built_ins() {
        let result = run(
            &test_schema(),
            "{ __schema { directives { name isRepeatable locations args { name defaultValue type { name } } } } }",
        );
        let directives = &result["__schema"]["directives"];
        assert_eq!(names(directives), ["cached", "include", "skip", "deprecated", "specifiedBy", "oneOf"]);
        let cached = json!({"name": "cached", "isRepeatable": true, "locations": ["FIELD_DEFINITION", "OBJECT"],
                            "args": [{"name": "ttl", "defaultValue": "60", "type": {"name": "Int"}}]});
        assert_eq!(directives[0], cached);
        let skip = json!({"name": "skip", "isRepeatable": false, "locations": ["FIELD", "FRAGMENT_SPREAD", "INLINE_FRAGMENT"],
                          "args": [{"name": "if", "defaultValue": null, "type": {"name": null}}]});
        assert_eq!(directives[2], skip);
        assert_eq!(directives[3]["args"][0]["defaultValue"], "\"No longer supported\"");
        let unused_one_of = build("type Query { a: Int } directive @oneOf on OBJECT | INTERFACE | UNION");
        let plain = run(&unused_one_of, "{ __schema { directives { name } } }");
        assert_eq!(names(&plain["__schema"]["directives"]), ["include", "skip", "deprecated", "specifiedBy"]);
    }

    #[test]
    fn introspection_types_are_canonical() {
        let result = run(
            &test_schema(),
            r#"{
              schema: __type(name: "__Schema") { fields { name } }
              type: __type(name: "__Type") { fields { name args { name defaultValue } } }
              kinds: __type(name: "__TypeKind") { enumValues { name } }
            }"#,
        );
        let schema_fields = ["description", "types", "queryType", "mutationType", "subscriptionType", "directives"];
        assert_eq!(names(&result["schema"]["fields"]), schema_fields);
        let type_fields = &result["type"]["fields"];
        assert_eq!(names(type_fields).len(), 11);
        assert_eq!(type_fields[4]["args"], json!([{"name": "includeDeprecated", "defaultValue": "false"}]));
        let kinds = ["SCALAR", "OBJECT", "INTERFACE", "UNION", "ENUM", "INPUT_OBJECT", "LIST", "NON_NULL"];
        assert_eq!(names(&result["kinds"]["enumValues"]), kinds);
    }

    #[test]
    fn type_extensions_are_merged() {
        let schema = build(
            "type Query { a: Int } extend type Query { b: String } enum E { X } extend enum E { Y }
             union U = Query extend union U = Other type Other { c: Int }",
        );
        let result = run(
            &schema,
            r#"{ q: __type(name: "Query") { fields { name } } e: __type(name: "E") { enumValues { name } }
                 u: __type(name: "U") { possibleTypes { name } } }"#,
        );
        assert_eq!(names(&result["q"]["fields"]), ["a", "b"]);
        assert_eq!(names(&result["e"]["enumValues"]), ["X", "Y"]);
        assert_eq!(names(&result["u"]["possibleTypes"]), ["Query", "Other"]);
    }

    #[test]
    fn full_introspection_query() {
        let result = run(&test_schema(), FULL_INTROSPECTION_QUERY);
        let schema = &result["__schema"];
        assert_eq!(schema["description"], Value::Null);
        assert_eq!(schema["queryType"], json!({"name": "Query"}));
        assert_eq!(schema["mutationType"], json!({"name": "Mutation"}));
        assert_eq!(schema["subscriptionType"], Value::Null);
        let types = &schema["types"];
        let listed = names(types);
        let defined = ["Query", "Mutation", "Node", "User", "Post", "SearchResult", "Status", "Filter", "Pick", "Date"];
        let builtins = ["ID", "Boolean", "String", "Int", "Float", "__Schema", "__Type", "__TypeKind", "__Field"];
        let more = ["__InputValue", "__EnumValue", "__Directive", "__DirectiveLocation"];
        for name in defined.iter().chain(&builtins).chain(&more) {
            assert!(listed.contains(name), "{name} is listed");
        }
        assert_eq!(listed.len(), defined.len() + builtins.len() + more.len());

        let by_name = |name: &str| types.as_array().and_then(|t| t.iter().find(|t| t["name"] == name)).expect("listed");
        let user = by_name("User");
        let expected_user_keys = [
            "kind",
            "name",
            "description",
            "specifiedByURL",
            "fields",
            "inputFields",
            "interfaces",
            "enumValues",
            "possibleTypes",
        ];
        let keys: Vec<&String> = user.as_object().expect("object").keys().collect();
        assert_eq!(keys, expected_user_keys);
        assert_eq!(user["inputFields"], Value::Null);
        assert_eq!(user["interfaces"], json!([{"kind": "INTERFACE", "name": "Node", "ofType": null}]));
        let query = by_name("Query");
        assert_eq!(query["description"], "The root query");
        assert_eq!(names(&query["fields"]), ["me", "user", "search", "node", "pick", "legacy", "oldMe"]);
        let user_arg = &query["fields"][1]["args"][0];
        let expected_arg = json!({"name": "id", "description": "The user id",
            "type": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "SCALAR", "name": "ID", "ofType": null}},
            "defaultValue": null, "isDeprecated": false, "deprecationReason": null});
        assert_eq!(user_arg, &expected_arg);
        let pick_legacy = &query["fields"][4]["args"][1];
        assert_eq!(pick_legacy["isDeprecated"], true);
        assert_eq!(pick_legacy["deprecationReason"], "Use by");
        assert_eq!(names(&by_name("Filter")["inputFields"]), ["kind", "limit", "query", "old"]);
        assert_eq!(names(&by_name("__DirectiveLocation")["enumValues"]).len(), 19);
        assert_eq!(names(&schema["directives"]), ["cached", "include", "skip", "deprecated", "specifiedBy", "oneOf"]);
    }

    #[test]
    fn graphiql_style_query_with_nested_type_refs_and_variables() {
        let operation = r#"
            query Q($deprecated: Boolean = true) {
              __schema {
                types {
                  ... on __Type @include(if: true) {
                    name
                    fields(includeDeprecated: $deprecated) { name }
                  }
                }
              }
            }
        "#;
        let result = run_with(&test_schema(), operation, json!({"deprecated": true})).expect("runs");
        let query = &result["__schema"]["types"][0];
        assert_eq!(query["name"], "Query");
        assert_eq!(names(&query["fields"]).len(), 7);
    }
}
