//! The API schema indexed for introspection, once per loaded supergraph: the
//! document's types in document order, each built-in scalar right after the
//! first type that references it, then the introspection types (graphql-js'
//! order); extensions merged; built-ins always the canonical ones.

use std::collections::{HashMap, HashSet};

use graphql_tools::parser::parse_schema;
use graphql_tools::static_graphql::schema;

use super::builtins::{BUILTIN_DIRECTIVES, BUILTIN_SCALARS, BUILTIN_SDL, DEFAULT_DEPRECATION_REASON, TypeExtension};
use super::literal::print_literal;

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
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::Scalar => "SCALAR",
            Kind::Object => "OBJECT",
            Kind::Interface => "INTERFACE",
            Kind::Union => "UNION",
            Kind::Enum => "ENUM",
            Kind::InputObject => "INPUT_OBJECT",
        }
    }

    pub(super) fn has_fields(self) -> bool {
        matches!(self, Kind::Object | Kind::Interface)
    }
}

/// A named type, with everything introspection can ask of it.
#[derive(Debug)]
pub(super) struct TypeDef {
    pub(super) kind: Kind,
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) specified_by_url: Option<String>,
    pub(super) fields: Vec<FieldDef>,
    pub(super) interfaces: Vec<String>,
    /// Union members, or the object types implementing an interface.
    pub(super) possible_types: Vec<String>,
    pub(super) enum_values: Vec<EnumValueDef>,
    pub(super) input_fields: Vec<InputValueDef>,
    pub(super) one_of: bool,
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
pub(super) struct FieldDef {
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) args: Vec<InputValueDef>,
    pub(super) ty: schema::Type,
    pub(super) deprecation: Option<String>,
}

/// An argument or input field; the default value is already printed as GraphQL.
#[derive(Debug)]
pub(super) struct InputValueDef {
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) ty: schema::Type,
    pub(super) default_value: Option<String>,
    pub(super) deprecation: Option<String>,
}

/// A value of an enum type.
#[derive(Debug)]
pub(super) struct EnumValueDef {
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) deprecation: Option<String>,
}

/// A directive definition.
#[derive(Debug)]
pub(super) struct DirectiveDef {
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) args: Vec<InputValueDef>,
    pub(super) repeatable: bool,
    pub(super) locations: Vec<&'static str>,
}

/// Schema elements that `@deprecated` can mark.
pub(super) trait Deprecatable {
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
    pub(super) types: Vec<TypeDef>,
    pub(super) by_name: HashMap<String, usize>,
    pub(super) directives: Vec<DirectiveDef>,
    pub(super) query_type: Option<String>,
    pub(super) mutation_type: Option<String>,
    pub(super) subscription_type: Option<String>,
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

    pub(super) fn named(&self, name: &str) -> Option<&TypeDef> {
        self.by_name.get(name).and_then(|&i| self.types.get(i))
    }
}

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

/// The named type inside a type's list and non-null wrappers.
pub fn named_type(ty: &schema::Type) -> &str {
    match ty {
        schema::Type::NamedType(name) => name,
        schema::Type::ListType(inner) | schema::Type::NonNullType(inner) => named_type(inner),
    }
}
