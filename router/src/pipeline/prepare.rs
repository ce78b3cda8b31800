//! Parse, validate and plan an operation, once per (document, operation name,
//! supergraph version): repeated operations skip straight to execution.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use graphql_tools::static_graphql::query::{
    self, Definition, Field, FragmentDefinition, OperationDefinition, Selection, SelectionSet, Type,
};
use hive_router_query_planner::ast::normalization::normalize_operation;
use hive_router_query_planner::planner::plan_nodes::QueryPlan;
use hive_router_query_planner::utils::cancellation::CancellationToken;
use lru::LruCache;
use serde_json::{Map, Value};

use super::error::RequestError;
use super::project::is_included;
use super::request::GraphqlRequest;
use crate::config::GraphqlSettings;
use crate::supergraph::Supergraph;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationType {
    Query,
    Mutation,
    Subscription,
}

impl OperationType {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationType::Query => "query",
            OperationType::Mutation => "mutation",
            OperationType::Subscription => "subscription",
        }
    }
}

/// An operation ready to execute.
pub struct Prepared {
    pub operation: OperationDefinition,
    pub operation_type: OperationType,
    pub operation_name: Option<String>,
    pub fragments: HashMap<String, FragmentDefinition>,
    /// `None` when nothing needs a subgraph (introspection, `__typename`).
    pub plan: Option<QueryPlan>,
    pub has_introspection: bool,
    /// Every root field occurrence by name, through fragments (rate limits charge some).
    pub root_fields: Vec<String>,
}

const INTROSPECTION_FIELDS: [&str; 2] = ["__schema", "__type"];

/// Prepared operations by a hash of their text, operation name and supergraph
/// version. A hit is used only when all three equal the request's: a hash
/// alone would let one query be answered with another's plan (and a crafted
/// collision make a victim's query run an attacker's operation). The hash keys
/// are random per process, so collisions cannot be aimed at an entry either.
pub struct PlanCache {
    entries: Mutex<LruCache<u64, Cached>>,
    hasher: std::hash::RandomState,
}

struct Cached {
    query: Box<str>,
    operation_name: Option<Box<str>>,
    version: u64,
    prepared: Arc<Prepared>,
}

impl Cached {
    fn is_for(&self, query: &str, operation_name: Option<&str>, version: u64) -> bool {
        self.version == version && *self.query == *query && self.operation_name.as_deref() == operation_name
    }
}

impl PlanCache {
    pub fn new(size: usize) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(NonZeroUsize::new(size.max(1)).expect("at least one"))),
            hasher: std::hash::RandomState::new(),
        }
    }

    pub fn prepare(
        &self,
        supergraph: &Supergraph,
        request: &GraphqlRequest,
        settings: &GraphqlSettings,
    ) -> Result<Arc<Prepared>, RequestError> {
        let query = request.query.as_deref().filter(|q| !q.trim().is_empty());
        let query = query.ok_or_else(|| RequestError::BadRequest("The request has no query".into()))?;
        super::limits::check_length(&settings.limits, query)?;
        let operation_name = request.operation_name.as_deref();
        let version = supergraph.version;
        let key = self.hasher.hash_one((query, operation_name, version));
        let hit = self
            .entries
            .lock()
            .expect("cache lock")
            .get(&key)
            .and_then(|cached| cached.is_for(query, operation_name, version).then(|| cached.prepared.clone()));
        if let Some(hit) = hit {
            super::telemetry::get().plan_cache(true);
            return Ok(hit);
        }
        super::telemetry::get().plan_cache(false);
        let prepared = Arc::new(prepare(supergraph, query, operation_name, settings)?);
        let cached = Cached {
            query: query.into(),
            operation_name: operation_name.map(Into::into),
            version,
            prepared: prepared.clone(),
        };
        self.entries.lock().expect("cache lock").put(key, cached);
        Ok(prepared)
    }

    /// Files `prepared` under the key `query` would have, whatever its own text: a collision, for tests.
    #[cfg(test)]
    fn plant(&self, query: &str, version: u64, impostor: &str, prepared: Arc<Prepared>) {
        let key = self.hasher.hash_one((query, None::<&str>, version));
        let cached = Cached { query: impostor.into(), operation_name: None, version, prepared };
        self.entries.lock().expect("cache lock").put(key, cached);
    }
}

/// Parse → select operation → validate → plan.
pub fn prepare(
    supergraph: &Supergraph,
    query: &str,
    operation_name: Option<&str>,
    settings: &GraphqlSettings,
) -> Result<Prepared, RequestError> {
    let document = hive_router_query_planner::utils::parsing::safe_parse_operation(query)
        .map_err(|e| RequestError::Parse(e.to_string().trim().to_owned()))?;
    let operation = select_operation(&document, operation_name)?.clone();
    let fragments: HashMap<String, FragmentDefinition> = document
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::Fragment(f) => Some((f.name.clone(), f.clone())),
            _ => None,
        })
        .collect();
    super::limits::check(&settings.limits, selection_set(&operation), &fragments)?;
    let errors =
        graphql_tools::validation::validate::validate(&supergraph.api_schema, &document, &supergraph.validation);
    if let Some(first) = errors.first() {
        let locations = first.locations.iter().map(|p| (p.line, p.column)).collect();
        return Err(RequestError::Validation { message: first.message.clone(), locations });
    }
    let operation_type = operation_type(&operation);
    if operation_type == OperationType::Subscription {
        return Err(RequestError::Unsupported("Subscriptions are not supported over HTTP".into()));
    }
    let has_introspection = uses_introspection(selection_set(&operation), &fragments);
    if has_introspection && !settings.introspection {
        return Err(RequestError::IntrospectionDisabled);
    }
    let plan = plan(supergraph, &document, &operation, operation_name, &fragments)?;
    let mut root_fields = Vec::new();
    collect_root_fields(selection_set(&operation), &fragments, &mut root_fields);
    Ok(Prepared {
        operation_name: operation_name.map(str::to_owned).or_else(|| operation_name_of(&operation)),
        operation,
        operation_type,
        fragments,
        plan,
        has_introspection,
        root_fields,
    })
}

fn select_operation<'d>(
    document: &'d query::Document,
    name: Option<&str>,
) -> Result<&'d OperationDefinition, RequestError> {
    let operations: Vec<&OperationDefinition> = document
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::Operation(op) => Some(op),
            _ => None,
        })
        .collect();
    match name {
        Some(name) => operations
            .into_iter()
            .find(|op| operation_name_of(op).as_deref() == Some(name))
            .ok_or_else(|| RequestError::UnknownOperation(format!("Unknown operation named \"{name}\""))),
        None if operations.len() == 1 => Ok(operations[0]),
        None if operations.is_empty() => Err(RequestError::UnknownOperation("The document has no operation".into())),
        None => Err(RequestError::UnknownOperation(
            "The document has several operations: name one with operationName".into(),
        )),
    }
}

fn operation_name_of(op: &OperationDefinition) -> Option<String> {
    match op {
        OperationDefinition::Query(q) => q.name.clone(),
        OperationDefinition::Mutation(m) => m.name.clone(),
        OperationDefinition::Subscription(s) => s.name.clone(),
        OperationDefinition::SelectionSet(_) => None,
    }
}

fn operation_type(op: &OperationDefinition) -> OperationType {
    match op {
        OperationDefinition::Query(_) | OperationDefinition::SelectionSet(_) => OperationType::Query,
        OperationDefinition::Mutation(_) => OperationType::Mutation,
        OperationDefinition::Subscription(_) => OperationType::Subscription,
    }
}

pub fn selection_set(op: &OperationDefinition) -> &SelectionSet {
    match op {
        OperationDefinition::Query(q) => &q.selection_set,
        OperationDefinition::Mutation(m) => &m.selection_set,
        OperationDefinition::Subscription(s) => &s.selection_set,
        OperationDefinition::SelectionSet(s) => s,
    }
}

pub fn variable_definitions(op: &OperationDefinition) -> &[query::VariableDefinition] {
    match op {
        OperationDefinition::Query(q) => &q.variable_definitions,
        OperationDefinition::Mutation(m) => &m.variable_definitions,
        OperationDefinition::Subscription(s) => &s.variable_definitions,
        OperationDefinition::SelectionSet(_) => &[],
    }
}

/// Root-level introspection fields, through root fragments too.
fn uses_introspection(set: &SelectionSet, fragments: &HashMap<String, FragmentDefinition>) -> bool {
    set.items.iter().any(|item| match item {
        Selection::Field(f) => INTROSPECTION_FIELDS.contains(&f.name.as_str()),
        Selection::InlineFragment(i) => uses_introspection(&i.selection_set, fragments),
        Selection::FragmentSpread(s) => {
            fragments.get(&s.fragment_name).is_some_and(|f| uses_introspection(&f.selection_set, fragments))
        }
    })
}

/// Plans what the subgraphs must fetch: the operation without the root fields
/// the router answers itself (`__schema`, `__type`, `__typename`).
fn plan(
    supergraph: &Supergraph,
    document: &query::Document,
    operation: &OperationDefinition,
    operation_name: Option<&str>,
    fragments: &HashMap<String, FragmentDefinition>,
) -> Result<Option<QueryPlan>, RequestError> {
    let mut for_planner = document.clone();
    let mut remaining = 0;
    for definition in &mut for_planner.definitions {
        if let Definition::Operation(op) = definition
            && operation_name_of(op) == operation_name_of(operation)
        {
            let set = selection_set_mut(op);
            strip_router_fields(set, fragments);
            remaining = set.items.len();
        }
    }
    if remaining == 0 {
        return Ok(None);
    }
    let normalized =
        normalize_operation(&supergraph.planner.supergraph, &for_planner, operation_name).map_err(|e| {
            tracing::error!(error = %e, "normalization failed");
            RequestError::Plan
        })?;
    let plan = supergraph
        .planner
        .plan_from_normalized_operation(&normalized.operation, Default::default(), &CancellationToken::new())
        .map_err(|e| {
            tracing::error!(error = %e, "planning failed");
            RequestError::Plan
        })?;
    tracing::debug!(plan = %plan, "planned");
    Ok(plan.node.is_some().then_some(plan))
}

fn selection_set_mut(op: &mut OperationDefinition) -> &mut SelectionSet {
    match op {
        OperationDefinition::Query(q) => &mut q.selection_set,
        OperationDefinition::Mutation(m) => &mut m.selection_set,
        OperationDefinition::Subscription(s) => &mut s.selection_set,
        OperationDefinition::SelectionSet(s) => s,
    }
}

fn strip_router_fields(set: &mut SelectionSet, fragments: &HashMap<String, FragmentDefinition>) {
    set.items.retain_mut(|item| match item {
        Selection::Field(f) => !INTROSPECTION_FIELDS.contains(&f.name.as_str()) && f.name != "__typename",
        Selection::InlineFragment(i) => {
            strip_router_fields(&mut i.selection_set, fragments);
            !i.selection_set.items.is_empty()
        }
        // Root fragments are inlined so that their router-answered fields can be removed.
        Selection::FragmentSpread(_) => true,
    });
    let mut inlined = Vec::with_capacity(set.items.len());
    for item in set.items.drain(..) {
        match item {
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = fragments.get(&spread.fragment_name) {
                    let mut inner = fragment.selection_set.clone();
                    strip_router_fields(&mut inner, fragments);
                    if !inner.items.is_empty() {
                        inlined.push(Selection::InlineFragment(query::InlineFragment {
                            position: spread.position,
                            type_condition: Some(fragment.type_condition.clone()),
                            directives: spread.directives,
                            selection_set: inner,
                        }));
                    }
                }
            }
            other => inlined.push(other),
        }
    }
    set.items = inlined;
}

impl Prepared {
    /// Checks that every variable the operation requires is given, applies defaults,
    /// and drops variables the operation does not declare.
    pub fn coerce_variables(&self, mut given: Map<String, Value>) -> Result<Map<String, Value>, RequestError> {
        let mut coerced = Map::new();
        for definition in variable_definitions(&self.operation) {
            let name = &definition.name;
            // Per the spec: a missing value takes the default; an explicit null does not.
            let value = match given.remove(name) {
                None => definition.default_value.as_ref().map(|d| super::project::literal_to_json(d, &Map::new())),
                given => given,
            };
            match value {
                Some(Value::Null) | None if matches!(definition.var_type, Type::NonNullType(_)) => {
                    return Err(RequestError::Variables(format!(
                        "Variable \"${name}\" of required type \"{}\" was not provided.",
                        definition.var_type
                    )));
                }
                Some(value) => {
                    coerced.insert(name.clone(), value);
                }
                None => {}
            }
        }
        Ok(coerced)
    }

    /// Root `__schema` / `__type` fields that `@skip`/`@include` leave in.
    pub fn root_introspection_fields<'a>(&'a self, variables: &Map<String, Value>) -> Vec<&'a Field> {
        let mut found = Vec::new();
        collect_root_introspection(selection_set(&self.operation), &self.fragments, variables, &mut found);
        found
    }
}

/// Validation has ruled out fragment cycles, so this terminates.
fn collect_root_fields(set: &SelectionSet, fragments: &HashMap<String, FragmentDefinition>, found: &mut Vec<String>) {
    for item in &set.items {
        match item {
            Selection::Field(f) => found.push(f.name.clone()),
            Selection::InlineFragment(i) => collect_root_fields(&i.selection_set, fragments, found),
            Selection::FragmentSpread(s) => {
                if let Some(fragment) = fragments.get(&s.fragment_name) {
                    collect_root_fields(&fragment.selection_set, fragments, found);
                }
            }
        }
    }
}

fn collect_root_introspection<'a>(
    set: &'a SelectionSet,
    fragments: &'a HashMap<String, FragmentDefinition>,
    variables: &Map<String, Value>,
    found: &mut Vec<&'a Field>,
) {
    for item in &set.items {
        match item {
            Selection::Field(f) if INTROSPECTION_FIELDS.contains(&f.name.as_str()) => {
                if is_included(&f.directives, variables) {
                    found.push(f);
                }
            }
            Selection::Field(_) => {}
            Selection::InlineFragment(i) if is_included(&i.directives, variables) => {
                collect_root_introspection(&i.selection_set, fragments, variables, found)
            }
            Selection::InlineFragment(_) => {}
            Selection::FragmentSpread(s) if is_included(&s.directives, variables) => {
                if let Some(fragment) = fragments.get(&s.fragment_name) {
                    collect_root_introspection(&fragment.selection_set, fragments, variables, found);
                }
            }
            Selection::FragmentSpread(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{GraphqlSettings, SubgraphSettings};

    fn fixture() -> (Supergraph, GraphqlSettings) {
        let sdl = include_str!("../../benches/fixtures/supergraph.graphql");
        let env = &mut kit::Env::from_pairs(Vec::<(String, String)>::new());
        let subgraphs: SubgraphSettings = crate::Settings::from_env(env).subgraphs;
        let settings = crate::Settings::from_env(env).graphql;
        (Supergraph::from_sdl(sdl, &subgraphs, 1).expect("fixture builds"), settings)
    }

    fn request(query: &str) -> GraphqlRequest {
        GraphqlRequest { query: Some(query.into()), ..Default::default() }
    }

    #[test]
    fn a_cached_plan_is_used_only_for_the_very_text_it_was_made_from() {
        let (supergraph, settings) = fixture();
        let cache = PlanCache::new(10);
        let victim = "{ topProducts { upc } }";
        let other = cache.prepare(&supergraph, &request("{ topProducts { name } }"), &settings).expect("plans");
        // As if the other query's text had hashed to the victim's key.
        cache.plant(victim, supergraph.version, "{ topProducts { name } }", other.clone());
        let prepared = cache.prepare(&supergraph, &request(victim), &settings).expect("plans");
        assert!(!Arc::ptr_eq(&prepared, &other), "another query's plan was used");
        let again = cache.prepare(&supergraph, &request(victim), &settings).expect("plans");
        assert!(Arc::ptr_eq(&prepared, &again), "the victim's own plan is now cached");
    }
}
