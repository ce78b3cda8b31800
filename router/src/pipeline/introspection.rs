//! Introspection (`__schema`, `__type`) answered by the router from the API schema.
//! Placeholder until the full implementation lands.

use std::collections::HashMap;

use graphql_tools::static_graphql::{query, schema};
use serde_json::{Map, Value};

pub struct IntrospectionSchema;

impl IntrospectionSchema {
    pub fn new(_api_schema: &schema::Document) -> Self {
        IntrospectionSchema
    }

    pub fn resolve_root_field(
        &self,
        _field: &query::Field,
        _fragments: &HashMap<String, query::FragmentDefinition>,
        _variables: &Map<String, Value>,
    ) -> Result<Value, String> {
        Err("introspection is not available yet".into())
    }
}
