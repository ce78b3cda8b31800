//! Variable values coerced against their declared types (GraphQL spec,
//! "CoerceVariableValues"), so a wrongly typed value is the client's request
//! error here rather than a subgraph's failure later.
//!
//! Int (32-bit, integral), Float, String, Boolean, ID (a string, or an integer
//! turned into one), enums (the API schema's values only), input objects
//! (unknown fields refused, required fields, defaults, nested), lists (a single
//! value becomes a one-item list) and nullability are checked; custom scalars
//! (`Upload`'s placeholder among them) pass through as given. Messages follow
//! graphql-js: `Variable "$input" got invalid value "x" at "input.status"; …`.

use graphql_tools::static_graphql::query::VariableDefinition;
use graphql_tools::static_graphql::schema::Type;
use rustc_hash::FxHashSet;
use serde_json::{Map, Value};

use super::error::RequestError;
use super::project::literal_to_json;
use crate::supergraph::inputs::{InputField, InputType, InputTypes};

/// Coercion, the variables stage's use of the API schema's input types.
impl InputTypes {
    /// Coerces the request's variables for an operation declaring `definitions`:
    /// defaults applied, values checked and normalised, undeclared ones dropped.
    pub fn coerce(
        &self,
        definitions: &[VariableDefinition],
        mut given: Map<String, Value>,
    ) -> Result<Map<String, Value>, RequestError> {
        let mut coerced = Map::new();
        for definition in definitions {
            let name = &definition.name;
            let ty = &definition.var_type;
            // Per the spec: a missing value takes the default; an explicit null does not.
            match given.remove(name) {
                None => match &definition.default_value {
                    Some(default) => {
                        coerced.insert(name.clone(), literal_to_json(default, &Map::new()));
                    }
                    None if matches!(ty, Type::NonNullType(_)) => {
                        return Err(RequestError::Variables(format!(
                            "Variable \"${name}\" of required type \"{ty}\" was not provided."
                        )));
                    }
                    None => {}
                },
                Some(Value::Null) if matches!(ty, Type::NonNullType(_)) => {
                    return Err(RequestError::Variables(format!(
                        "Variable \"${name}\" of non-null type \"{ty}\" must not be null."
                    )));
                }
                Some(mut value) => {
                    self.value(&mut value, ty).map_err(|invalid| invalid.into_error(name, &value))?;
                    coerced.insert(name.clone(), value);
                }
            }
        }
        Ok(coerced)
    }

    /// Coerces `value` to `ty` in place.
    fn value(&self, value: &mut Value, ty: &Type) -> Result<(), Invalid> {
        match ty {
            Type::NonNullType(inner) if value.is_null() => {
                Err(Invalid::new(format!("Expected non-nullable type \"{inner}!\" not to be null.")))
            }
            Type::NonNullType(inner) => self.value(value, inner),
            _ if value.is_null() => Ok(()),
            Type::ListType(item) => match value {
                Value::Array(items) => {
                    for (index, entry) in items.iter_mut().enumerate() {
                        self.value(entry, item).map_err(|invalid| invalid.at(Segment::Index(index)))?;
                    }
                    Ok(())
                }
                // A single value stands for a one-item list.
                single => {
                    self.value(single, item)?;
                    *single = Value::Array(vec![single.take()]);
                    Ok(())
                }
            },
            Type::NamedType(name) => self.named(value, name),
        }
    }

    fn named(&self, value: &mut Value, type_name: &str) -> Result<(), Invalid> {
        match type_name {
            "Int" => int(value),
            "Float" if value.is_number() => Ok(()),
            "Float" => Err(Invalid::new(format!("Float cannot represent non numeric value: {}", inspect(value)))),
            "String" if value.is_string() => Ok(()),
            "String" => Err(Invalid::new(format!("String cannot represent a non string value: {}", inspect(value)))),
            "Boolean" if value.is_boolean() => Ok(()),
            "Boolean" => Err(Invalid::new(format!("Boolean cannot represent a non boolean value: {}", inspect(value)))),
            "ID" => id(value),
            _ => match self.get(type_name) {
                Some(InputType::Enum(values)) => enum_value(value, type_name, values),
                Some(InputType::Object(fields)) => self.object(value, type_name, fields),
                // Unknown types are refused by validation before variables are looked at.
                Some(InputType::Custom) | None => Ok(()),
            },
        }
    }

    fn object(&self, value: &mut Value, type_name: &str, fields: &[InputField]) -> Result<(), Invalid> {
        let Value::Object(object) = value else {
            return Err(Invalid::new(format!("Expected type \"{type_name}\" to be an object.")));
        };
        if let Some(unknown) = object.keys().find(|key| !fields.iter().any(|f| f.name == **key)) {
            return Err(Invalid::new(format!("Field \"{unknown}\" is not defined by type \"{type_name}\".")));
        }
        for field in fields {
            match (object.get_mut(&field.name), &field.default) {
                (Some(entry), _) => {
                    let segment = || Segment::Field(field.name.clone());
                    self.value(entry, &field.ty).map_err(|invalid| invalid.at(segment()))?;
                }
                (None, Some(default)) => {
                    object.insert(field.name.clone(), literal_to_json(default, &Map::new()));
                }
                (None, None) if matches!(field.ty, Type::NonNullType(_)) => {
                    return Err(Invalid::new(format!(
                        "Field \"{}\" of required type \"{}\" was not provided.",
                        field.name, field.ty
                    )));
                }
                (None, None) => {}
            }
        }
        Ok(())
    }
}

fn int(value: &mut Value) -> Result<(), Invalid> {
    let Some(number) = integral(value) else {
        return Err(Invalid::new(format!("Int cannot represent non-integer value: {}", inspect(value))));
    };
    if i32::try_from(number).is_err() {
        return Err(Invalid::new(format!("Int cannot represent non 32-bit signed integer value: {}", inspect(value))));
    }
    *value = Value::from(number);
    Ok(())
}

fn id(value: &mut Value) -> Result<(), Invalid> {
    if value.is_string() {
        return Ok(());
    }
    match integral(value) {
        Some(number) => {
            *value = Value::String(number.to_string());
            Ok(())
        }
        None => Err(Invalid::new(format!("ID cannot represent value: {}", inspect(value)))),
    }
}

/// A JSON number with no fractional part (`3`, `3.0`, `3e2`), as an integer.
fn integral(value: &Value) -> Option<i64> {
    let number = value.as_number()?;
    if let Some(integer) = number.as_i64() {
        return Some(integer);
    }
    let float = number.as_f64()?;
    // Integral floats out of i64's range stay out of every Int's range: saturate.
    (float.fract() == 0.0).then_some(float as i64)
}

fn enum_value(value: &Value, type_name: &str, values: &FxHashSet<String>) -> Result<(), Invalid> {
    let Value::String(name) = value else {
        return Err(Invalid::new(format!(
            "Enum \"{type_name}\" cannot represent non-string value: {}.",
            inspect(value)
        )));
    };
    if values.contains(name) {
        Ok(())
    } else {
        Err(Invalid::new(format!("Value \"{name}\" does not exist in \"{type_name}\" enum.")))
    }
}

/// A value as messages show it: its JSON, cut short if long.
fn inspect(value: &Value) -> String {
    const SHOWN: usize = 80;
    let text = value.to_string();
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

enum Segment {
    Field(String),
    Index(usize),
}

/// Why a value was refused, and where inside the variable (innermost segment first).
struct Invalid {
    reversed_path: Vec<Segment>,
    message: String,
}

impl Invalid {
    fn new(message: String) -> Self {
        Self { reversed_path: Vec::new(), message }
    }

    fn at(mut self, segment: Segment) -> Self {
        self.reversed_path.push(segment);
        self
    }

    fn into_error(self, variable: &str, value: &Value) -> RequestError {
        let mut at = value;
        let mut path = variable.to_owned();
        for segment in self.reversed_path.iter().rev() {
            match segment {
                Segment::Field(name) => {
                    path.push('.');
                    path.push_str(name);
                    at = at.get(name).unwrap_or(&Value::Null);
                }
                Segment::Index(index) => {
                    path.push_str(&format!("[{index}]"));
                    at = at.get(index).unwrap_or(&Value::Null);
                }
            }
        }
        let location = if self.reversed_path.is_empty() { String::new() } else { format!(" at \"{path}\"") };
        RequestError::Variables(format!(
            "Variable \"${variable}\" got invalid value {}{location}; {}",
            inspect(at),
            self.message
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use graphql_tools::static_graphql::query::{Definition, OperationDefinition};
    use serde_json::json;

    use super::*;

    static INPUTS: LazyLock<InputTypes> = LazyLock::new(|| {
        let sdl = include_str!("../../../schema/supergraph.graphql");
        let env = &mut platform::Env::from_pairs(Vec::<(String, String)>::new());
        let supergraph = crate::supergraph::Supergraph::from_sdl(sdl, &crate::Settings::from_env(env).subgraphs, 1)
            .expect("the supergraph builds");
        InputTypes::new(&supergraph.api_schema)
    });

    /// Coerces `variables` for an operation declaring `declared` (e.g. `$n: Int`).
    fn coerce(declared: &str, variables: Value) -> Result<Value, String> {
        let query = format!("query({declared}) {{ __typename }}");
        let document = graphql_tools::parser::parse_query::<String>(&query).expect("parses").into_static();
        let Some(Definition::Operation(OperationDefinition::Query(operation))) = document.definitions.first() else {
            panic!("a query")
        };
        let Value::Object(given) = variables else { panic!("an object") };
        INPUTS.coerce(&operation.variable_definitions, given).map(Value::Object).map_err(|e| e.to_string())
    }

    #[test]
    fn scalars_are_checked_and_normalised() {
        let ok = coerce(
            "$i: Int, $f: Float, $s: String, $b: Boolean, $id: ID, $n: ID, $when: DateTime",
            json!({ "i": 3.0, "f": 1, "s": "x", "b": true, "id": "a1", "n": 42, "when": "2030-01-01T00:00:00Z" }),
        );
        assert_eq!(
            ok,
            Ok(json!({ "i": 3, "f": 1, "s": "x", "b": true, "id": "a1", "n": "42", "when": "2030-01-01T00:00:00Z" }))
        );
        for (declared, value, message) in [
            ("$v: Int", json!("3"), "Int cannot represent non-integer value: \"3\""),
            ("$v: Int", json!(1.5), "Int cannot represent non-integer value: 1.5"),
            ("$v: Int", json!(2_147_483_648_i64), "Int cannot represent non 32-bit signed integer value: 2147483648"),
            ("$v: Float", json!("1"), "Float cannot represent non numeric value: \"1\""),
            ("$v: String", json!(1), "String cannot represent a non string value: 1"),
            ("$v: Boolean", json!("true"), "Boolean cannot represent a non boolean value: \"true\""),
            ("$v: ID", json!(true), "ID cannot represent value: true"),
            ("$v: ID", json!(1.5), "ID cannot represent value: 1.5"),
        ] {
            let refused = coerce(declared, json!({ "v": value })).unwrap_err();
            assert_eq!(refused, format!("Variable \"$v\" got invalid value {value}; {message}"), "{declared}");
        }
    }

    #[test]
    fn enums_take_only_the_api_schemas_values() {
        assert_eq!(coerce("$s: TaskStatus", json!({ "s": "DONE" })), Ok(json!({ "s": "DONE" })));
        let refused = coerce("$s: TaskStatus", json!({ "s": "done" })).unwrap_err();
        assert_eq!(
            refused,
            "Variable \"$s\" got invalid value \"done\"; Value \"done\" does not exist in \"TaskStatus\" enum."
        );
        let not_text = coerce("$s: TaskStatus", json!({ "s": 1 })).unwrap_err();
        assert!(not_text.contains("Enum \"TaskStatus\" cannot represent non-string value: 1."), "{not_text}");
        // The supergraph's own enums are not part of the API.
        assert!(INPUTS.get("join__Graph").is_none());
    }

    #[test]
    fn input_objects_refuse_unknown_and_missing_fields_and_take_defaults() {
        let ok = coerce("$o: TaskOrder", json!({ "o": { "field": "DUE_AT" } }));
        assert_eq!(ok, Ok(json!({ "o": { "field": "DUE_AT", "direction": "ASC" } })), "the default direction");
        let wrong = coerce("$input: UpdateTaskInput", json!({ "input": { "status": "x" } })).unwrap_err();
        assert_eq!(
            wrong,
            "Variable \"$input\" got invalid value \"x\" at \"input.status\"; Value \"x\" does not exist in \"TaskStatus\" enum."
        );
        let unknown = coerce("$input: UpdateTaskInput", json!({ "input": { "owner": "me" } })).unwrap_err();
        assert!(unknown.ends_with("Field \"owner\" is not defined by type \"UpdateTaskInput\"."), "{unknown}");
        let missing = coerce("$input: CreateTaskInput!", json!({ "input": { "description": "d" } })).unwrap_err();
        assert!(missing.ends_with("Field \"title\" of required type \"String!\" was not provided."), "{missing}");
        let not_object = coerce("$input: CreateTaskInput", json!({ "input": "title" })).unwrap_err();
        assert!(not_object.ends_with("Expected type \"CreateTaskInput\" to be an object."), "{not_object}");
        let null_required = coerce("$input: CreateTaskInput", json!({ "input": { "title": null } })).unwrap_err();
        assert!(null_required.contains("at \"input.title\"; Expected non-nullable type \"String!\" not to be null."));
    }

    #[test]
    fn lists_wrap_single_values_and_check_every_item() {
        assert_eq!(coerce("$l: [Int!]", json!({ "l": 1 })), Ok(json!({ "l": [1] })));
        assert_eq!(coerce("$l: [[Int]]", json!({ "l": [[1], null] })), Ok(json!({ "l": [[1], null] })));
        let refused = coerce("$l: [Int!]!", json!({ "l": [1, null] })).unwrap_err();
        assert_eq!(
            refused,
            "Variable \"$l\" got invalid value null at \"l[1]\"; Expected non-nullable type \"Int!\" not to be null."
        );
        let nested = coerce("$l: [TaskOrder]", json!({ "l": [{ "field": "DUE_AT" }, { "field": 3 }] })).unwrap_err();
        assert!(nested.contains("at \"l[1].field\""), "{nested}");
    }

    #[test]
    fn nullability_defaults_and_custom_scalars() {
        assert_eq!(coerce("$i: Int", json!({})), Ok(json!({})), "absent and nullable: absent");
        assert_eq!(coerce("$i: Int", json!({ "i": null })), Ok(json!({ "i": null })));
        assert_eq!(coerce("$i: Int = 5", json!({})), Ok(json!({ "i": 5 })));
        assert_eq!(coerce("$i: Int", json!({ "other": 1 })), Ok(json!({})), "undeclared variables are dropped");
        let missing = coerce("$i: Int!", json!({})).unwrap_err();
        assert_eq!(missing, "Variable \"$i\" of required type \"Int!\" was not provided.");
        let null = coerce("$i: Int! = 5", json!({ "i": null })).unwrap_err();
        assert_eq!(null, "Variable \"$i\" of non-null type \"Int!\" must not be null.");
        // A custom scalar is the subgraph's to judge; an upload's placeholder passes.
        assert_eq!(coerce("$f: Upload!", json!({ "f": "<upload>" })), Ok(json!({ "f": "<upload>" })));
        assert_eq!(coerce("$f: [Upload!]!", json!({ "f": ["<upload>"] })), Ok(json!({ "f": ["<upload>"] })));
    }

    #[test]
    fn long_values_are_cut_short_in_messages() {
        let refused = coerce("$s: String", json!({ "s": vec![0; 500] })).unwrap_err();
        assert!(refused.len() < 300 && refused.contains('…'), "{refused}");
    }
}
