//! The API schema's input types (enums, input objects, custom scalars), as the
//! coercion of variables needs them.

use graphql_tools::static_graphql::schema::{self, Definition, Type, TypeDefinition};
use rustc_hash::{FxHashMap, FxHashSet};

/// The API schema's input types, as coercion needs them. Built once per supergraph.
#[derive(Debug, Default)]
pub struct InputTypes {
    types: FxHashMap<String, InputType>,
}

#[derive(Debug)]
pub enum InputType {
    Enum(FxHashSet<String>),
    Object(Vec<InputField>),
    /// A custom scalar: its values are the subgraph's to judge.
    Custom,
}

#[derive(Debug)]
pub struct InputField {
    pub name: String,
    pub ty: Type,
    /// Its default, as the schema writes it.
    pub default: Option<schema::Value>,
}

impl InputTypes {
    pub fn new(api_schema: &schema::Document) -> Self {
        let mut types = FxHashMap::default();
        for definition in &api_schema.definitions {
            let Definition::TypeDefinition(definition) = definition else { continue };
            let (name, input) = match definition {
                TypeDefinition::Enum(e) => {
                    (&e.name, InputType::Enum(e.values.iter().map(|v| v.name.clone()).collect()))
                }
                TypeDefinition::InputObject(i) => {
                    let fields = i
                        .fields
                        .iter()
                        .map(|f| InputField {
                            name: f.name.clone(),
                            ty: f.value_type.clone(),
                            default: f.default_value.clone(),
                        })
                        .collect();
                    (&i.name, InputType::Object(fields))
                }
                TypeDefinition::Scalar(s) => (&s.name, InputType::Custom),
                _ => continue,
            };
            types.insert(name.clone(), input);
        }
        Self { types }
    }

    /// The input type `name`, unless it is a built-in scalar or unknown.
    pub fn get(&self, name: &str) -> Option<&InputType> {
        self.types.get(name)
    }
}
