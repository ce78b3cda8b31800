//! Parse, validate and plan an operation, once per (document, operation name,
//! supergraph version): repeated operations skip straight to execution.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::mem::size_of;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graphql_tools::static_graphql::query::{
    self, Definition, Field, FragmentDefinition, OperationDefinition, Selection, SelectionSet,
};
use hive_router_query_planner::ast::normalization::normalize_operation;
use hive_router_query_planner::planner::plan_nodes::QueryPlan;
use hive_router_query_planner::utils::cancellation::CancellationToken;
use lru::LruCache;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use super::error::RequestError;
use super::project::is_included;
use super::request::GraphqlRequest;
use crate::config::GraphqlSettings;
use crate::introspection::named_type;
use crate::supergraph::inputs::InputTypes;
use crate::supergraph::{SchemaIndex, Supergraph};

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
    /// `graphql_operations_by_name_total` of its operation name.
    pub by_name: metrics::Counter,
}

const INTROSPECTION_FIELDS: [&str; 2] = ["__schema", "__type"];

/// How long past `PLANNING_TIMEOUT` a request waits for a preparation that
/// is not the planner's (which stops itself at the timeout).
const PREPARE_GRACE: Duration = Duration::from_millis(100);

mod weight;

/// Prepared operations, and refused ones, by a hash of their text, operation
/// name and supergraph version. A hit is used only when all three equal the
/// request's: a hash alone would let one query be answered with another's plan
/// (and a crafted collision make a victim's query run an attacker's operation).
/// The hash keys are random per process, so collisions cannot be aimed at an
/// entry either. A miss is prepared on the blocking pool, a bounded number at
/// once, so that an expensive document never holds up the async threads.
///
/// Both caches are bounded in bytes (`PLAN_CACHE_MAX_BYTES`, a quarter of it
/// for refusals), each entry weighed by what it holds ([`weight`]): a count of
/// entries would let large distinct operations hold gigabytes.
pub struct PlanCache {
    entries: Arc<Entries>,
    permits: Arc<Semaphore>,
    planning_timeout: Duration,
}

struct Entries {
    prepared: Mutex<Weighed<Arc<Prepared>>>,
    /// Refused documents, kept apart so that junk cannot push good plans out:
    /// repeating a refused document costs a lookup.
    refused: Mutex<Weighed<RequestError>>,
    hasher: std::hash::RandomState,
}

struct Cached<T> {
    query: Box<str>,
    operation_name: Option<Box<str>>,
    version: u64,
    value: T,
    /// Bytes it holds, the key's copy of the text included.
    weight: usize,
}

impl<T: Clone> Cached<T> {
    fn new(query: &str, operation_name: Option<&str>, version: u64, value: T, weight: usize) -> Self {
        let weight = weight + size_of::<Self>() + query.len() + operation_name.map_or(0, str::len) + LRU_ENTRY_BYTES;
        Self { query: query.into(), operation_name: operation_name.map(Into::into), version, value, weight }
    }

    fn value_for(&self, query: &str, operation_name: Option<&str>, version: u64) -> Option<T> {
        let same = self.version == version && *self.query == *query && self.operation_name.as_deref() == operation_name;
        same.then(|| self.value.clone())
    }
}

/// What the LRU spends per entry besides it: its key, list links and hash slot.
const LRU_ENTRY_BYTES: usize = 64;

/// An LRU bounded by the summed weight of its entries.
struct Weighed<T> {
    lru: LruCache<u64, Cached<T>>,
    bytes: usize,
    max_bytes: usize,
}

impl<T> Weighed<T> {
    fn new(max_bytes: usize) -> Self {
        Self { lru: LruCache::unbounded(), bytes: 0, max_bytes }
    }

    fn get(&mut self, hash: u64) -> Option<&Cached<T>> {
        self.lru.get(&hash)
    }

    /// Files `cached`, dropping the least recently used entries until all fit;
    /// an entry larger than the whole bound is not kept at all.
    fn put(&mut self, hash: u64, cached: Cached<T>) {
        if let Some(old) = self.lru.pop(&hash) {
            self.bytes -= old.weight;
        }
        if cached.weight > self.max_bytes {
            return;
        }
        self.bytes += cached.weight;
        self.lru.put(hash, cached);
        while self.bytes > self.max_bytes {
            let Some((_, evicted)) = self.lru.pop_lru() else { break };
            self.bytes -= evicted.weight;
        }
    }
}

/// What identifies a preparation: the text, the operation name, the supergraph version.
struct Key<'r> {
    hash: u64,
    query: &'r str,
    operation_name: Option<&'r str>,
    version: u64,
}

impl Entries {
    fn get(&self, key: &Key) -> Option<Result<Arc<Prepared>, RequestError>> {
        let (query, name, version) = (key.query, key.operation_name, key.version);
        let hit =
            self.prepared.lock().expect("cache lock").get(key.hash).and_then(|c| c.value_for(query, name, version));
        if let Some(prepared) = hit {
            return Some(Ok(prepared));
        }
        let refused =
            self.refused.lock().expect("cache lock").get(key.hash).and_then(|c| c.value_for(query, name, version));
        refused.map(Err)
    }

    fn file(&self, key: &Key, result: &Result<Arc<Prepared>, RequestError>) {
        let (query, name, version) = (key.query, key.operation_name, key.version);
        match result {
            Ok(prepared) => {
                let cached = Cached::new(query, name, version, prepared.clone(), weight::prepared(prepared));
                self.prepared.lock().expect("cache lock").put(key.hash, cached);
            }
            Err(error) => {
                let cached = Cached::new(query, name, version, error.clone(), error.to_string().len());
                self.refused.lock().expect("cache lock").put(key.hash, cached);
            }
        }
    }
}

impl PlanCache {
    pub fn new(settings: &GraphqlSettings) -> Self {
        let max_bytes = settings.plan_cache_max_bytes;
        let entries = Entries {
            prepared: Mutex::new(Weighed::new(max_bytes)),
            refused: Mutex::new(Weighed::new(max_bytes / 4)),
            hasher: std::hash::RandomState::new(),
        };
        Self {
            entries: Arc::new(entries),
            permits: Arc::new(Semaphore::new(settings.prepare_concurrency.max(1))),
            planning_timeout: settings.planning_timeout,
        }
    }

    /// The request's prepared operation (or its refusal): from the cache on the
    /// calling thread, else prepared on the blocking pool once a permit is free.
    /// The wait for a permit ends with the request (`REQUEST_TIMEOUT`).
    pub async fn prepare(
        &self,
        supergraph: &Arc<Supergraph>,
        request: &GraphqlRequest,
        settings: &GraphqlSettings,
    ) -> Result<Arc<Prepared>, RequestError> {
        let key = self.key(supergraph, request, settings)?;
        if let Some(hit) = self.entries.get(&key) {
            super::telemetry::get().plan_cache(true);
            return hit;
        }
        super::telemetry::get().plan_cache(false);
        let permit = self.permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        let (entries, supergraph, settings) = (self.entries.clone(), supergraph.clone(), settings.clone());
        let (hash, query, operation_name) = (key.hash, key.query.to_owned(), key.operation_name.map(str::to_owned));
        let job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let result = prepare(&supergraph, &query, operation_name.as_deref(), &settings).map(Arc::new);
            let key =
                Key { hash, query: &query, operation_name: operation_name.as_deref(), version: supergraph.version };
            entries.file(&key, &result);
            result
        });
        match tokio::time::timeout(self.planning_timeout + PREPARE_GRACE, job).await {
            Ok(Ok(result)) => result,
            Ok(Err(panicked)) => {
                tracing::error!(error = %panicked, "preparing an operation panicked");
                Err(RequestError::Plan)
            }
            // The job goes on, holding its permit, and files its result when done;
            // the planner, if it gets that far, logs the timeout as a warning.
            Err(_) => {
                tracing::debug!(timeout = ?self.planning_timeout, "preparing an operation timed out");
                Err(timed_out(self.planning_timeout))
            }
        }
    }

    /// The cached preparation or refusal for this request, if there is one.
    pub fn cached(
        &self,
        supergraph: &Supergraph,
        request: &GraphqlRequest,
        settings: &GraphqlSettings,
    ) -> Option<Result<Arc<Prepared>, RequestError>> {
        self.key(supergraph, request, settings).map_or_else(|e| Some(Err(e)), |key| self.entries.get(&key))
    }

    fn key<'r>(
        &self,
        supergraph: &Supergraph,
        request: &'r GraphqlRequest,
        settings: &GraphqlSettings,
    ) -> Result<Key<'r>, RequestError> {
        let query = request.query.as_deref().filter(|q| !q.trim().is_empty());
        let query = query.ok_or_else(|| RequestError::BadRequest("The request has no query".into()))?;
        super::limits::check_length(&settings.limits, query)?;
        let operation_name = request.operation_name.as_deref();
        let version = supergraph.version;
        let hash = self.entries.hasher.hash_one((query, operation_name, version));
        Ok(Key { hash, query, operation_name, version })
    }

    /// Entries and bytes of the plan cache (not of the refusals), for tests.
    #[cfg(test)]
    fn usage(&self) -> (usize, usize) {
        let prepared = self.entries.prepared.lock().expect("cache lock");
        (prepared.lru.len(), prepared.bytes)
    }

    /// Files `prepared` under the key `query` would have, whatever its own text: a collision, for tests.
    #[cfg(test)]
    fn plant(&self, query: &str, version: u64, impostor: &str, prepared: Arc<Prepared>) {
        let key = Key {
            hash: self.entries.hasher.hash_one((query, None::<&str>, version)),
            query: impostor,
            operation_name: None,
            version,
        };
        self.entries.file(&key, &Ok(prepared));
    }
}

fn timed_out(timeout: Duration) -> RequestError {
    RequestError::LimitExceeded(format!(
        "The operation could not be prepared within {} (PLANNING_TIMEOUT)",
        humantime::format_duration(timeout)
    ))
}

/// Tokens → parse → select operation → limits → validate → plan, within `PLANNING_TIMEOUT`.
pub fn prepare(
    supergraph: &Supergraph,
    query: &str,
    operation_name: Option<&str>,
    settings: &GraphqlSettings,
) -> Result<Prepared, RequestError> {
    let cancel = CancellationToken::with_timeout(settings.planning_timeout);
    super::limits::check_text(&settings.limits, query)?;
    let document = hive_router_query_planner::utils::parsing::safe_parse_operation(query)
        .map_err(|e| RequestError::Parse(e.to_string().trim().to_owned()))?;
    let selected = select_operation(&document, operation_name)?;
    let fragments: HashMap<String, FragmentDefinition> = document
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::Fragment(f) => Some((f.name.clone(), f.clone())),
            _ => None,
        })
        .collect();
    // Measured before the operation is copied: a refusal costs the parse and this walk.
    super::limits::check(&settings.limits, supergraph, &document, selected, &fragments)?;
    let operation = selected.clone();
    let operation_type = operation_type(&operation);
    let errors =
        graphql_tools::validation::validate::validate(&supergraph.api_schema, &document, &supergraph.validation);
    if let Some(first) = errors.first() {
        let locations = first.locations.iter().map(|p| (p.line, p.column)).collect();
        return Err(RequestError::Validation { message: first.message.clone(), locations });
    }
    if operation_type == OperationType::Subscription {
        return Err(RequestError::Unsupported("Subscriptions are not supported over HTTP".into()));
    }
    let has_introspection = uses_introspection(selection_set(&operation), &fragments);
    if has_introspection && !settings.introspection {
        return Err(RequestError::IntrospectionDisabled);
    }
    let plan = plan(supergraph, &document, &operation, operation_name, &fragments, &cancel, settings)?;
    let mut root_fields = Vec::new();
    collect_root_fields(selection_set(&operation), &fragments, &mut root_fields);
    let operation_name = operation_name.map(str::to_owned).or_else(|| operation_name_of(&operation));
    Ok(Prepared {
        by_name: super::telemetry::get().operation_name(operation_name.as_deref()),
        operation_name,
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
///
/// The document has passed validation, so a failure here is the planner's, but
/// any client can trigger one: it is logged once (the refusal is cached), not
/// at error level, and a planner that runs out of time is the document's fault.
fn plan(
    supergraph: &Supergraph,
    document: &query::Document,
    operation: &OperationDefinition,
    operation_name: Option<&str>,
    fragments: &HashMap<String, FragmentDefinition>,
    cancel: &CancellationToken,
    settings: &GraphqlSettings,
) -> Result<Option<QueryPlan>, RequestError> {
    let mut for_planner = document.clone();
    let mut remaining = 0;
    let schema = &supergraph.schema;
    for definition in &mut for_planner.definitions {
        match definition {
            Definition::Operation(op) if operation_name_of(op) == operation_name_of(operation) => {
                let root = root_type(schema, operation_type(op)).to_owned();
                let set = selection_set_mut(op);
                strip_router_fields(set, fragments);
                request_typenames(schema, &root, set, fragments);
                remaining = set.items.len();
            }
            Definition::Operation(_) => {}
            Definition::Fragment(fragment) => {
                let query::TypeCondition::On(on) = &fragment.type_condition;
                request_typenames(schema, &on.clone(), &mut fragment.selection_set, fragments);
            }
        }
    }
    if remaining == 0 {
        return Ok(None);
    }
    let normalized =
        normalize_operation(&supergraph.planner.supergraph, &for_planner, operation_name).map_err(|e| {
            tracing::warn!(error = %e, "the planner could not normalise a validated operation");
            RequestError::Plan
        })?;
    let plan = supergraph
        .planner
        .plan_from_normalized_operation(&normalized.operation, Default::default(), cancel)
        .map_err(|e| {
            // The planner's stages wrap its cancellation each in their own error.
            if cancel.bail_if_cancelled().is_err() {
                tracing::warn!(timeout = ?settings.planning_timeout, "planning timed out");
                return timed_out(settings.planning_timeout);
            }
            tracing::warn!(error = %e, "the planner could not plan a validated operation");
            RequestError::Plan
        })?;
    tracing::debug!(plan = %plan, "planned");
    Ok(plan.node.is_some().then_some(plan))
}

fn root_type(schema: &SchemaIndex, operation_type: OperationType) -> &str {
    match operation_type {
        OperationType::Query => &schema.query_type,
        OperationType::Mutation => schema.mutation_type.as_deref().unwrap_or("Mutation"),
        OperationType::Subscription => schema.subscription_type.as_deref().unwrap_or("Subscription"),
    }
}

/// Adds `__typename` to the planner's copy of every selection on an abstract
/// type whose projection needs the concrete type (it asks for `__typename`,
/// aliased or not, or has fragments on other types). A subgraph need not send
/// `__typename` unasked (an `@interfaceObject` subgraph cannot even know it):
/// asked, the planner fetches it where it lives. The client's own operation,
/// which projection follows, is left as it was, so the client never sees it.
fn request_typenames(
    schema: &SchemaIndex,
    parent: &str,
    set: &mut SelectionSet,
    fragments: &HashMap<String, FragmentDefinition>,
) {
    for item in &mut set.items {
        match item {
            Selection::Field(field) if !field.selection_set.items.is_empty() => {
                let Some(field_type) = schema.field_type(parent, &field.name) else { continue };
                let named = named_type(field_type).to_owned();
                let needs =
                    schema.is_abstract(&named) && needs_runtime_type(&named, &field.selection_set, fragments, 0);
                if needs && !has_plain_typename(&field.selection_set) {
                    field.selection_set.items.insert(0, typename_field(field.position));
                }
                request_typenames(schema, &named, &mut field.selection_set, fragments);
            }
            Selection::InlineFragment(inline) => {
                let on = match &inline.type_condition {
                    Some(query::TypeCondition::On(on)) => on.clone(),
                    None => parent.to_owned(),
                };
                request_typenames(schema, &on, &mut inline.selection_set, fragments);
            }
            // Fragment definitions are walked on their own; fields without selections need nothing.
            Selection::Field(_) | Selection::FragmentSpread(_) => {}
        }
    }
}

/// Whether projecting `set` on an object of the abstract type `abstract_type`
/// needs its concrete type. Validation has ruled out fragment cycles; the depth
/// bound is a second line of defence.
fn needs_runtime_type(
    abstract_type: &str,
    set: &SelectionSet,
    fragments: &HashMap<String, FragmentDefinition>,
    depth: usize,
) -> bool {
    depth < 32
        && set.items.iter().any(|item| match item {
            Selection::Field(field) => field.name == "__typename",
            Selection::InlineFragment(inline) => match &inline.type_condition {
                Some(query::TypeCondition::On(on)) if on != abstract_type => true,
                _ => needs_runtime_type(abstract_type, &inline.selection_set, fragments, depth + 1),
            },
            Selection::FragmentSpread(spread) => fragments.get(&spread.fragment_name).is_some_and(|fragment| {
                let query::TypeCondition::On(on) = &fragment.type_condition;
                on != abstract_type || needs_runtime_type(abstract_type, &fragment.selection_set, fragments, depth + 1)
            }),
        })
}

fn has_plain_typename(set: &SelectionSet) -> bool {
    set.items.iter().any(|item| matches!(item, Selection::Field(f) if f.name == "__typename" && f.alias.is_none()))
}

fn typename_field(position: graphql_tools::parser::Pos) -> Selection {
    Selection::Field(Field {
        position,
        alias: None,
        name: "__typename".to_owned(),
        arguments: Vec::new(),
        directives: Vec::new(),
        selection_set: SelectionSet { span: (position, position), items: Vec::new() },
    })
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
    /// The request's variables coerced to the types the operation declares (see `variables`).
    pub fn coerce_variables(
        &self,
        inputs: &InputTypes,
        given: Map<String, Value>,
    ) -> Result<Map<String, Value>, RequestError> {
        inputs.coerce(variable_definitions(&self.operation), given)
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

    fn fixture() -> (Arc<Supergraph>, GraphqlSettings) {
        let sdl = include_str!("../../benches/fixtures/supergraph.graphql");
        let env = &mut platform::Env::from_pairs(Vec::<(String, String)>::new());
        let subgraphs: SubgraphSettings = crate::Settings::from_env(env).subgraphs;
        let settings = crate::Settings::from_env(env).graphql;
        (Arc::new(Supergraph::from_sdl(sdl, &subgraphs, 1).expect("fixture builds")), settings)
    }

    fn request(query: &str) -> GraphqlRequest {
        GraphqlRequest { query: Some(query.into()), ..Default::default() }
    }

    #[tokio::test]
    async fn a_cached_plan_is_used_only_for_the_very_text_it_was_made_from() {
        let (supergraph, settings) = fixture();
        let cache = PlanCache::new(&settings);
        let victim = "{ topProducts { upc } }";
        let other = cache.prepare(&supergraph, &request("{ topProducts { name } }"), &settings).await.expect("plans");
        // As if the other query's text had hashed to the victim's key.
        cache.plant(victim, supergraph.version, "{ topProducts { name } }", other.clone());
        let prepared = cache.prepare(&supergraph, &request(victim), &settings).await.expect("plans");
        assert!(!Arc::ptr_eq(&prepared, &other), "another query's plan was used");
        let again = cache.prepare(&supergraph, &request(victim), &settings).await.expect("plans");
        assert!(Arc::ptr_eq(&prepared, &again), "the victim's own plan is now cached");
    }

    #[tokio::test]
    async fn a_refused_document_is_remembered_for_its_very_text_name_and_version() {
        let (supergraph, settings) = fixture();
        let cache = PlanCache::new(&settings);
        let refused = format!("query Many {{ topProducts {{ {} }} }}", "upc ".repeat(1001));
        let first = cache.prepare(&supergraph, &request(&refused), &settings).await.err().expect("refused");
        assert!(first.to_string().contains("MAX_QUERY_FIELDS"), "{first}");

        let remembered = cache.cached(&supergraph, &request(&refused), &settings).expect("a cached refusal");
        assert_eq!(remembered.err().map(|e| e.to_string()), Some(first.to_string()));
        let named = GraphqlRequest { operation_name: Some("Many".into()), ..request(&refused) };
        assert!(cache.cached(&supergraph, &named, &settings).is_none(), "another operation name is another key");
        let reloaded = Supergraph::from_sdl(
            include_str!("../../benches/fixtures/supergraph.graphql"),
            &crate::Settings::from_env(&mut platform::Env::from_pairs(Vec::<(String, String)>::new())).subgraphs,
            2,
        )
        .expect("fixture builds");
        assert!(cache.cached(&reloaded, &request(&refused), &settings).is_none(), "a new supergraph decides anew");
    }

    /// An operation weighing some 40 KB (document and plan), different for each `i`.
    fn large_operation(i: usize) -> String {
        let products: String = (0..10)
            .map(|k| format!("p{i}x{k}: topProducts(first: 1) {{ upc name price reviews {{ id body author {{ id username }} }} }} "))
            .collect();
        format!("query Large{i} {{ me {{ id username }} {products}}}")
    }

    #[tokio::test]
    async fn many_large_distinct_operations_stay_within_the_byte_bound() {
        let (supergraph, mut settings) = fixture();
        let bound = 2 << 20;
        settings.plan_cache_max_bytes = bound;
        let cache = PlanCache::new(&settings);
        let one = weight::prepared(&prepare(&supergraph, &large_operation(0), None, &settings).expect("plans"));
        assert!(one > 10_000, "a large operation: {one} bytes");

        for i in 0..1000 {
            cache.prepare(&supergraph, &request(&large_operation(i)), &settings).await.expect("plans");
            let (_, bytes) = cache.usage();
            assert!(bytes <= bound, "{bytes} bytes held after {i} operations, over {bound}");
        }

        let (entries, bytes) = cache.usage();
        assert!(entries < 1000 && entries >= bound / (2 * one), "{entries} entries of about {one} bytes in {bytes}");
        assert!(bytes > bound / 2, "the cache is used: {bytes} bytes");
        let cached = |i: usize| cache.cached(&supergraph, &request(&large_operation(i)), &settings).is_some();
        assert!(cached(999) && !cached(0), "the least recently used went first");
    }

    #[tokio::test]
    async fn an_operation_larger_than_the_whole_bound_is_answered_but_not_kept() {
        let (supergraph, mut settings) = fixture();
        settings.plan_cache_max_bytes = 1000;
        let cache = PlanCache::new(&settings);

        let prepared = cache.prepare(&supergraph, &request(&large_operation(1)), &settings).await;

        assert!(prepared.is_ok());
        assert_eq!(cache.usage(), (0, 0));
    }

    /// The levels of the events logged on this thread.
    #[derive(Clone, Default)]
    struct Logged(Arc<Mutex<Vec<tracing::Level>>>);

    impl tracing::Subscriber for Logged {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            self.0.lock().expect("lock").push(*event.metadata().level());
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn planning_stops_at_the_planning_timeout_and_says_so_once_as_a_warning() {
        let (supergraph, mut settings) = fixture();
        settings.planning_timeout = Duration::ZERO;
        let logged = Logged::default();
        let error = tracing::subscriber::with_default(logged.clone(), || {
            let refused = prepare(&supergraph, "{ topProducts { name reviews { body } } }", None, &settings);
            let error = refused.err().expect("timed out");
            // Where the response is made, which logged planning failures a second time.
            let _ = crate::pipeline::response::GraphqlResponse::request_error(error.clone());
            error
        });
        assert_eq!(error.code(), "BAD_USER_INPUT");
        assert!(error.to_string().contains("PLANNING_TIMEOUT"), "{error}");
        let levels = logged.0.lock().expect("lock").clone();
        let loud: Vec<_> = levels.into_iter().filter(|level| *level <= tracing::Level::WARN).collect();
        assert_eq!(loud, [tracing::Level::WARN], "one warning, no error: anyone can send such a document");
    }
}
