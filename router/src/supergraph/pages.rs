//! Page sizes as the cost limit counts them: a `first`/`last` literal or
//! variable, and each field's default page when neither is given.

use graphql_tools::static_graphql::query::Value;
use graphql_tools::static_graphql::schema::{self, TypeDefinition};
use rustc_hash::FxHashMap;

/// A `first`/`last` given by a variable counts as the largest page allowed.
pub const VARIABLE_PAGE_SIZE: u64 = 100;
/// The page-size arguments.
pub const PAGE_ARGUMENTS: [&str; 2] = ["first", "last"];

/// What the cost measure needs of the API schema besides field types: the page
/// size of every field whose `first`/`last` argument has a default, when neither is given.
#[derive(Debug, Default)]
pub struct PageDefaults {
    /// type → field → page size counted without a `first`/`last` argument.
    pages: FxHashMap<String, FxHashMap<String, u64>>,
}

impl PageDefaults {
    pub fn new(api_schema: &schema::Document) -> Self {
        let mut pages: FxHashMap<String, FxHashMap<String, u64>> = FxHashMap::default();
        for definition in &api_schema.definitions {
            let (type_name, fields) = match definition {
                schema::Definition::TypeDefinition(TypeDefinition::Object(o)) => (&o.name, &o.fields),
                schema::Definition::TypeDefinition(TypeDefinition::Interface(i)) => (&i.name, &i.fields),
                _ => continue,
            };
            for field in fields {
                let page = field
                    .arguments
                    .iter()
                    .filter(|argument| PAGE_ARGUMENTS.contains(&argument.name.as_str()))
                    .filter_map(|argument| argument.default_value.as_ref().and_then(page_size))
                    .max();
                if let Some(page) = page {
                    pages.entry(type_name.clone()).or_default().insert(field.name.clone(), page);
                }
            }
        }
        Self { pages }
    }

    pub fn get(&self, type_name: &str, field: &str) -> Option<u64> {
        self.pages.get(type_name)?.get(field).copied()
    }
}

/// A page size given as a literal: an Int (at least 1) or a variable; `None` for anything else.
pub fn page_size(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => Some(n.as_i64().unwrap_or(i64::MAX).max(1) as u64),
        Value::Variable(_) => Some(VARIABLE_PAGE_SIZE),
        _ => None,
    }
}
