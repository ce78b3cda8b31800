//! Executes a query plan. Fetches in a `Parallel` node run concurrently; each
//! one reads what it needs from the shared response under a short lock,
//! awaits its subgraph without holding it, then merges its answer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use futures::future::{BoxFuture, FutureExt, join_all};
use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::SelectionSet;
use hive_router_query_planner::planner::plan_nodes::{
    BatchFetchNode, FetchNode, FetchNodePathSegment, FetchRewrite, FlattenNodePath, FlattenNodePathSegment, PlanNode,
    QueryPlan,
};
use serde_json::{Map, Value};

use super::answer::{Answer, Node, read_answer};
use super::error::graphql_error;
use super::multipart::Uploads;
use crate::subgraphs::{Decode, SubgraphClient, SubgraphError, parsed_answer};
use crate::supergraph::{SchemaIndex, Supergraph};

pub struct Execution<'a> {
    supergraph: &'a Supergraph,
    client: &'a SubgraphClient,
    variables: &'a Map<String, Value>,
    headers: &'a HeaderMap,
    /// Mutation plans keep root fields strictly in order (see `parallel`).
    mutation: bool,
    data: Mutex<Value>,
    errors: Mutex<Vec<Value>>,
    waiting: Mutex<Waiting>,
    /// Subgraphs called, for the request log.
    called: Mutex<Vec<String>>,
    /// Files of a multipart request, for the fetch that uses them.
    uploads: Option<&'a Uploads>,
    /// What of a subgraph's errors the client sees (`SUBGRAPH_ERRORS`).
    error_mode: SubgraphErrors,
}

/// The body of a subgraph request, serialised without copying the operation.
#[derive(serde::Serialize)]
struct SubgraphRequest<'a> {
    query: &'a str,
    variables: &'a Map<String, Value>,
}

/// Wall time during which at least one subgraph request was in flight.
#[derive(Default)]
struct Waiting {
    in_flight: usize,
    since: Option<Instant>,
    total: Duration,
}

/// Where an entity sits in the response, and its representation's index.
struct EntityLocation {
    path: Vec<Value>,
    representation: usize,
}

impl<'a> Execution<'a> {
    pub fn new(
        supergraph: &'a Supergraph,
        client: &'a SubgraphClient,
        variables: &'a Map<String, Value>,
        headers: &'a HeaderMap,
        mutation: bool,
        uploads: Option<&'a Uploads>,
        error_mode: SubgraphErrors,
    ) -> Self {
        Self {
            supergraph,
            client,
            variables,
            headers,
            mutation,
            data: Mutex::new(Value::Object(Map::new())),
            errors: Mutex::new(Vec::new()),
            waiting: Mutex::new(Waiting::default()),
            called: Mutex::new(Vec::new()),
            uploads,
            error_mode,
        }
    }

    pub async fn run(&self, plan: &QueryPlan) {
        if let Some(node) = &plan.node {
            self.node(node).await;
        }
    }

    /// The subgraphs this execution called, each once, in first-call order.
    pub fn subgraphs_called(&self) -> Vec<String> {
        self.called.lock().expect("called lock").clone()
    }

    pub fn waited_seconds(&self) -> f64 {
        self.waiting.lock().expect("waiting lock").total.as_secs_f64()
    }

    pub fn into_parts(self) -> (Value, Vec<Value>) {
        (self.data.into_inner().expect("data lock"), self.errors.into_inner().expect("errors lock"))
    }

    fn node<'n>(&'n self, node: &'n PlanNode) -> BoxFuture<'n, ()> {
        async move {
            match node {
                PlanNode::Fetch(fetch) => self.root_fetch(fetch).await,
                PlanNode::Flatten(flatten) => match flatten.node.as_ref() {
                    PlanNode::Fetch(fetch) => self.entity_fetch(&flatten.path, fetch).await,
                    other => self.node(other).await,
                },
                PlanNode::BatchFetch(batch) => self.batch_fetch(batch).await,
                PlanNode::Sequence(seq) => {
                    for child in &seq.nodes {
                        self.node(child).await;
                    }
                }
                PlanNode::Parallel(par) => self.parallel(&par.nodes).await,
                PlanNode::Condition(condition) => {
                    let on = self.variables.get(&condition.condition) == Some(&Value::Bool(true));
                    let branch = if on { &condition.if_clause } else { &condition.else_clause };
                    if let Some(branch) = branch {
                        self.node(branch).await;
                    }
                }
                PlanNode::Subscription(_) | PlanNode::Defer(_) => {
                    self.push_error(graphql_error(
                        "@defer and subscriptions are not supported",
                        None,
                        Some("BAD_REQUEST"),
                    ));
                }
            }
        }
        .boxed()
    }

    /// Runs children concurrently. In a mutation, a root mutation fetch that
    /// shares a `Parallel` with entity fetches is a later root field, while the
    /// entity fetches complete earlier ones: those run first, then the root
    /// fields one at a time, so every field sees the effects of the ones before.
    async fn parallel(&self, nodes: &[PlanNode]) {
        if !self.mutation {
            join_all(nodes.iter().map(|child| self.node(child))).await;
            return;
        }
        let (roots, others): (Vec<&PlanNode>, Vec<&PlanNode>) = nodes.iter().partition(|n| has_root_mutation(n));
        join_all(others.into_iter().map(|child| self.node(child))).await;
        for root in roots {
            self.node(root).await;
        }
    }

    /// A fetch at the root of the operation: its data merges into the root.
    async fn root_fetch(&self, fetch: &FetchNode) {
        let Some(mut answer) = self.root_call(fetch, parsed_answer).await else {
            return;
        };
        if let Some(errors) = answer.get("errors").and_then(Value::as_array) {
            self.subgraph_errors(errors, &fetch.service_name);
        }
        if let Some(data) = answer.get_mut("data").filter(|d| d.is_object()) {
            apply_rewrites(&self.supergraph.schema, data, fetch.output_rewrites.as_deref());
            deep_merge(&mut self.data.lock().expect("data lock"), data.take());
        }
    }

    /// A plan that is one root fetch: its answer, read for projection alone
    /// (nothing is merged), its output rewrites applied.
    pub async fn only_fetch(&self, fetch: &FetchNode) -> Option<Answer> {
        let mut answer = self.root_call(fetch, read_answer).await?;
        if let Some(data) = answer.data.as_mut() {
            apply_rewrites(&self.supergraph.schema, data, fetch.output_rewrites.as_deref());
        }
        Some(answer)
    }

    /// Sends a root fetch; a failure is reported at each of its root fields.
    async fn root_call<T>(&self, fetch: &FetchNode, decode: Decode<T>) -> Option<T> {
        let variables = self.used_variables(fetch.variable_usages.iter().flatten());
        let affected = || root_response_keys(fetch).into_iter().map(|k| vec![Value::String(k)]).collect();
        let operation = &fetch.operation.document_str;
        self.call_decoded(&fetch.service_name, operation, variables, affected, decode).await
    }

    /// A subgraph's errors as the client sees them.
    pub fn subgraph_errors(&self, errors: &[Value], service: &str) {
        let mut all = self.errors.lock().expect("errors lock");
        all.extend(errors.iter().map(|e| subgraph_error(e, service, self.error_mode)));
    }

    /// An `_entities` fetch for the objects at `path`: one request, with
    /// de-duplicated representations.
    async fn entity_fetch(&self, path: &FlattenNodePath, fetch: &FetchNode) {
        let requires = fetch.requires.as_ref();
        let (representations, locations) = {
            let data = self.data.lock().expect("data lock");
            collect_representations(&self.supergraph.schema, &data, path, requires, fetch.input_rewrites.as_deref())
        };
        if representations.is_empty() {
            return;
        }
        let mut variables = self.used_variables(fetch.variable_usages.iter().flatten());
        variables.insert("representations".into(), Value::Array(representations));
        let entity_paths = || locations.iter().map(|l| l.path.clone()).collect();
        let Some(answer) = self.call(&fetch.service_name, &fetch.operation.document_str, variables, entity_paths).await
        else {
            return;
        };
        self.entity_errors(&answer, &fetch.service_name, &[("_entities", &locations)]);
        let entities = answer.pointer("/data/_entities").and_then(Value::as_array);
        self.merge_entities(entities, &locations, fetch.output_rewrites.as_deref());
    }

    /// Several `_entities` fetches to one subgraph in one request, each under an alias.
    async fn batch_fetch(&self, batch: &BatchFetchNode) {
        let mut variables = self.used_variables(batch.variable_usages.iter().flatten());
        let mut per_alias = Vec::new();
        {
            let data = self.data.lock().expect("data lock");
            for alias in &batch.entity_batch.aliases {
                let mut reps = Vec::new();
                let mut locations = Vec::new();
                for path in &alias.merge_paths {
                    let (r, l) = collect_representations(
                        &self.supergraph.schema,
                        &data,
                        path,
                        Some(&alias.requires),
                        alias.input_rewrites.as_deref(),
                    );
                    let offset = reps.len();
                    reps.extend(r);
                    locations.extend(l.into_iter().map(|mut l| {
                        l.representation += offset;
                        l
                    }));
                }
                variables.insert(alias.representations_variable_name.clone(), Value::Array(reps));
                per_alias.push((alias, locations));
            }
        }
        if per_alias.iter().all(|(_, l)| l.is_empty()) {
            return;
        }
        let paths = || per_alias.iter().flat_map(|(_, ls)| ls.iter().map(|l| l.path.clone())).collect();
        let Some(answer) = self.call(&batch.service_name, &batch.operation.document_str, variables, paths).await else {
            return;
        };
        let lists: Vec<(&str, &[EntityLocation])> =
            per_alias.iter().map(|(alias, locations)| (alias.alias.as_str(), locations.as_slice())).collect();
        self.entity_errors(&answer, &batch.service_name, &lists);
        for (alias, locations) in &per_alias {
            let entities = answer.get("data").and_then(|d| d.get(&alias.alias)).and_then(Value::as_array);
            self.merge_entities(entities, locations, alias.output_rewrites.as_deref());
        }
    }

    /// Merges the entities of one `_entities` list (`entities`) into the places they belong.
    fn merge_entities(
        &self,
        entities: Option<&Vec<Value>>,
        locations: &[EntityLocation],
        output_rewrites: Option<&[FetchRewrite]>,
    ) {
        let Some(entities) = entities else { return };
        let mut data = self.data.lock().expect("data lock");
        for location in locations {
            let Some(entity) = entities.get(location.representation).filter(|e| e.is_object()) else { continue };
            let mut entity = entity.clone();
            apply_rewrites(&self.supergraph.schema, &mut entity, output_rewrites);
            if let Some(target) = value_at_mut(&mut data, &location.path) {
                deep_merge(target, entity);
            }
        }
    }

    /// The errors of an `_entities` answer, each once for every place of the
    /// entity it names: `path` starts with the response key of its `_entities`
    /// list (`_entities`, or a batch's alias), then the representation's index.
    fn entity_errors(&self, answer: &Value, service: &str, lists: &[(&str, &[EntityLocation])]) {
        let Some(errors) = answer.get("errors").and_then(Value::as_array) else { return };
        let mut all = self.errors.lock().expect("errors lock");
        for error in errors {
            let list = error.pointer("/path/0").and_then(Value::as_str);
            let locations = match lists {
                // A lone list is the one meant, whatever the subgraph called it.
                [(_, locations)] => *locations,
                _ => lists.iter().find(|(key, _)| Some(*key) == list).map_or(&[][..], |(_, locations)| *locations),
            };
            all.extend(entity_errors(error, service, self.error_mode, locations));
        }
    }

    /// Sends one request; on transport failure records an error per affected
    /// path (so partial data stays explained) and returns `None`.
    async fn call(
        &self,
        service: &str,
        operation: &str,
        variables: Map<String, Value>,
        affected: impl FnOnce() -> Vec<Vec<Value>>,
    ) -> Option<Value> {
        self.call_decoded(service, operation, variables, affected, parsed_answer).await
    }

    /// As [`call`](Self::call), the answer read by `decode`.
    async fn call_decoded<T>(
        &self,
        service: &str,
        operation: &str,
        variables: Map<String, Value>,
        affected: impl FnOnce() -> Vec<Vec<Value>>,
        decode: Decode<T>,
    ) -> Option<T> {
        let Some(subgraph) = self.supergraph.subgraphs.get(service) else {
            self.push_error(graphql_error("The plan names an unknown subgraph", None, Some("INTERNAL")));
            return None;
        };
        let body = serde_json::to_vec(&SubgraphRequest { query: operation, variables: &variables }).ok()?;
        {
            let mut called = self.called.lock().expect("called lock");
            if !called.iter().any(|c| c == service) {
                called.push(service.to_owned());
            }
        }
        self.begin_wait();
        let result = match self.uploads.filter(|u| u.used_by(&variables)) {
            Some(uploads) => match uploads.take_body(body) {
                Some((stream, content_type, timeout)) => {
                    let blame_client = || uploads.client_at_fault();
                    let (client, headers) = (self.client, self.headers);
                    client
                        .send_multipart(subgraph, stream, &content_type, headers, timeout, &blame_client, decode)
                        .await
                }
                None => Err(SubgraphError::UploadTaken),
            },
            None => self.client.send_decoded(subgraph, body.into(), self.headers, !self.mutation, decode).await,
        };
        self.end_wait();
        match result {
            Ok(answer) => Some(answer),
            Err(e) => {
                let (code, message) = failure_error(&e, service);
                let mut errors = self.errors.lock().expect("errors lock");
                for path in affected() {
                    let mut error = graphql_error(&message, Some(path), Some(code));
                    error["extensions"]["serviceName"] = Value::String(service.to_owned());
                    errors.push(error);
                }
                None
            }
        }
    }

    fn used_variables<'v>(&self, names: impl Iterator<Item = &'v String>) -> Map<String, Value> {
        names.filter_map(|n| self.variables.get(n).map(|v| (n.clone(), v.clone()))).collect()
    }

    fn push_error(&self, error: Value) {
        self.errors.lock().expect("errors lock").push(error);
    }

    fn begin_wait(&self) {
        let mut w = self.waiting.lock().expect("waiting lock");
        if w.in_flight == 0 {
            w.since = Some(Instant::now());
        }
        w.in_flight += 1;
    }

    fn end_wait(&self) {
        let mut w = self.waiting.lock().expect("waiting lock");
        w.in_flight = w.in_flight.saturating_sub(1);
        if w.in_flight == 0
            && let Some(since) = w.since.take()
        {
            w.total += since.elapsed();
        }
    }
}

/// What the client is told at each path a failed fetch leaves empty: code and message.
fn failure_error(error: &SubgraphError, service: &str) -> (&'static str, String) {
    match error {
        SubgraphError::Timeout => ("SUBGRAPH_TIMEOUT", format!("Subgraph '{service}' did not answer in time")),
        SubgraphError::UploadTaken => {
            ("BAD_REQUEST", "The uploaded files can be used by one subgraph fetch only".to_owned())
        }
        SubgraphError::CircuitOpen => (
            "SUBGRAPH_UNAVAILABLE",
            format!("Subgraph '{service}' is unavailable (failing fast after repeated failures)"),
        ),
        SubgraphError::Saturated => (
            "SUBGRAPH_UNAVAILABLE",
            format!("Subgraph '{service}' is unavailable (all its connections are busy): retry shortly"),
        ),
        // The query asked for more than the router reads: the client can ask for less.
        SubgraphError::TooLarge => (
            "PAYLOAD_TOO_LARGE",
            format!(
                "The answer of subgraph '{service}' is larger than the router reads \
                 (SUBGRAPH_MAX_RESPONSE_BYTES): select fewer fields or smaller pages"
            ),
        ),
        _ => ("SUBGRAPH_UNAVAILABLE", format!("Subgraph '{service}' is unavailable")),
    }
}

fn root_response_keys(fetch: &FetchNode) -> Vec<String> {
    fetch
        .operation
        .document
        .operation
        .selection_set
        .items
        .iter()
        .filter_map(|item| match item {
            SelectionItem::Field(f) => Some(f.selection_identifier().to_owned()),
            _ => None,
        })
        .collect()
}

/// What of a subgraph's errors reaches the client: a setting (see config).
pub use crate::config::SubgraphErrors;

/// The codes whose errors keep their message when masked: the API's own (see
/// the README), and the request-error codes GraphQL servers commonly share
/// (Apollo Server's, which the router's own request errors use too).
/// `INTERNAL` and `INTERNAL_SERVER_ERROR` are not among them: such a message
/// (a foreign server's exception text) is exactly what masking hides.
pub const PASSED_CODES: [&str; 14] = [
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "PAYLOAD_TOO_LARGE",
    "RATE_LIMITED",
    "UNAVAILABLE",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "BAD_REQUEST",
    "OPERATION_RESOLUTION_FAILURE",
    "PERSISTED_QUERY_NOT_FOUND",
    "PERSISTED_QUERY_NOT_SUPPORTED",
];

/// A subgraph's error as the client sees it, the subgraph named.
fn subgraph_error(error: &Value, service: &str, mode: SubgraphErrors) -> Value {
    let Some(object) = error.as_object() else {
        return graphql_error("A subgraph returned a malformed error", None, Some("SUBGRAPH_ERROR"));
    };
    let mut error = match mode {
        SubgraphErrors::Pass => {
            let mut kept = object.clone();
            kept.remove("locations");
            kept
        }
        SubgraphErrors::Mask => masked(object, service),
    };
    let extensions = error.entry("extensions").or_insert_with(|| Value::Object(Map::new()));
    if let Some(ext) = extensions.as_object_mut() {
        ext.entry("serviceName").or_insert_with(|| Value::String(service.to_owned()));
    }
    Value::Object(error)
}

/// The error with only what may pass: its `path`; for a code of
/// [`PASSED_CODES`], its message and code, and the extensions the API's own
/// errors carry (`field`, `retryAfter`); for any other, a generic message and `INTERNAL`.
fn masked(error: &Map<String, Value>, service: &str) -> Map<String, Value> {
    let code = error.get("extensions").and_then(|e| e.get("code")).and_then(Value::as_str);
    let message = error.get("message").and_then(Value::as_str);
    let mut out = Map::new();
    let mut extensions = Map::new();
    match (code.filter(|c| PASSED_CODES.contains(c)), message) {
        (Some(code), Some(message)) => {
            out.insert("message".into(), Value::String(message.to_owned()));
            extensions.insert("code".into(), Value::String(code.to_owned()));
            let ours = error.get("extensions").and_then(Value::as_object);
            if let Some(field) = ours.and_then(|e| e.get("field")).filter(|f| f.is_string()) {
                extensions.insert("field".into(), field.clone());
            }
            if let Some(retry) = ours.and_then(|e| e.get("retryAfter")).filter(|r| r.is_number()) {
                extensions.insert("retryAfter".into(), retry.clone());
            }
        }
        _ => {
            let (code, message) = (code.unwrap_or(""), message.unwrap_or(""));
            tracing::debug!(subgraph = service, code, message, "a subgraph error masked");
            out.insert("message".into(), Value::String(format!("Subgraph '{service}' answered with an error")));
            extensions.insert("code".into(), Value::String("INTERNAL".into()));
        }
    }
    if let Some(path) = error.get("path").filter(|p| p.is_array()) {
        out.insert("path".into(), path.clone());
    }
    out.insert("extensions".into(), Value::Object(extensions));
    out
}

/// An `_entities` error, once for every place in the client's response where
/// the failing (de-duplicated) entity sits, its path rewritten to that place.
/// Without a usable index the error keeps its message and code but no path.
fn entity_errors(error: &Value, service: &str, mode: SubgraphErrors, locations: &[EntityLocation]) -> Vec<Value> {
    let mut base = subgraph_error(error, service, mode);
    let path = base.get("path").and_then(Value::as_array).cloned().unwrap_or_default();
    let index = path.get(1).and_then(Value::as_u64).map(|i| i as usize);
    let places: Vec<&EntityLocation> = match index {
        Some(i) => locations.iter().filter(|l| l.representation == i).collect(),
        None => Vec::new(),
    };
    if places.is_empty() {
        if let Some(object) = base.as_object_mut() {
            object.remove("path");
        }
        return vec![base];
    }
    places
        .into_iter()
        .map(|place| {
            let mut error = base.clone();
            let rewritten: Vec<Value> = place.path.iter().cloned().chain(path.iter().skip(2).cloned()).collect();
            error["path"] = Value::Array(rewritten);
            error
        })
        .collect()
}

/// Whether `node` holds a fetch of root mutation fields.
fn has_root_mutation(node: &PlanNode) -> bool {
    use hive_router_query_planner::state::supergraph_state::OperationKind;
    match node {
        PlanNode::Fetch(f) => f.requires.is_none() && matches!(f.operation_kind, Some(OperationKind::Mutation)),
        PlanNode::Sequence(s) => s.nodes.iter().any(has_root_mutation),
        PlanNode::Parallel(p) => p.nodes.iter().any(has_root_mutation),
        PlanNode::Condition(c) => {
            c.if_clause.as_deref().is_some_and(has_root_mutation)
                || c.else_clause.as_deref().is_some_and(has_root_mutation)
        }
        _ => false,
    }
}

/// Walks `path` in `data` and builds the de-duplicated representations of the
/// entities found there.
fn collect_representations(
    schema: &SchemaIndex,
    data: &Value,
    path: &FlattenNodePath,
    requires: Option<&SelectionSet>,
    input_rewrites: Option<&[FetchRewrite]>,
) -> (Vec<Value>, Vec<EntityLocation>) {
    let mut found = Vec::new();
    walk(schema, data, path.as_slice(), &mut Vec::new(), &mut found);
    let mut representations = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut locations = Vec::new();
    for (location, object) in found {
        let Some(mut representation) = requires.and_then(|r| represent(schema, object, r, None)) else { continue };
        apply_rewrites(schema, &mut representation, input_rewrites);
        // A representation without its type cannot be resolved: never send one.
        if representation.get("__typename").is_none_or(|t| !t.is_string()) {
            continue;
        }
        let key = representation.to_string();
        let position = *index.entry(key).or_insert_with(|| {
            representations.push(representation);
            representations.len() - 1
        });
        locations.push(EntityLocation { path: location, representation: position });
    }
    (representations, locations)
}

fn walk<'v>(
    schema: &SchemaIndex,
    value: &'v Value,
    path: &[FlattenNodePathSegment],
    at: &mut Vec<Value>,
    found: &mut Vec<(Vec<Value>, &'v Value)>,
) {
    let Some((segment, rest)) = path.split_first() else {
        if value.is_object() {
            found.push((at.clone(), value));
        } else if let Some(items) = value.as_array() {
            // Entity lists without an explicit "@" segment.
            for (i, item) in items.iter().enumerate() {
                at.push(Value::from(i));
                walk(schema, item, path, at, found);
                at.pop();
            }
        }
        return;
    };
    match segment {
        FlattenNodePathSegment::Field(name) => {
            if let Some(next) = value.get(name) {
                at.push(Value::String(name.clone()));
                walk(schema, next, rest, at, found);
                at.pop();
            }
        }
        FlattenNodePathSegment::List => {
            for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                at.push(Value::from(i));
                walk(schema, item, rest, at, found);
                at.pop();
            }
        }
        FlattenNodePathSegment::TypeCondition(types) => {
            if typename_matches(schema, value, types) {
                walk(schema, value, rest, at, found);
            }
        }
    }
}

/// The object's fields named by `requires`; `None` when one is missing.
///
/// The planner may write `field: _internal_qp_alias_0 { … }` (the field's
/// schema name, then the alias it fetched the value under, e.g. for another
/// argument): the value is read under the alias and written under the name.
/// An object without `__typename` (a subgraph may leave it out) takes its type
/// from `typename`, else from the first type condition it meets.
fn represent(schema: &SchemaIndex, object: &Value, requires: &SelectionSet, typename: Option<&str>) -> Option<Value> {
    let source = object.as_object()?;
    let mut own = source.get("__typename").and_then(Value::as_str).or(typename);
    let mut out = Map::new();
    for item in &requires.items {
        match item {
            SelectionItem::Field(field) => {
                let key = field.selection_identifier();
                let value = match source.get(&field.name).or_else(|| source.get(key)) {
                    Some(value) => represent_value(schema, value, &field.selections)?,
                    None if field.name == "__typename" => Value::String(own?.to_owned()),
                    None => return None,
                };
                out.insert(key.to_owned(), value);
            }
            SelectionItem::InlineFragment(fragment) => {
                let condition = fragment.type_condition.as_str();
                let runtime = *own.get_or_insert(condition);
                // An entity interface's implementations match a fragment on the interface.
                if schema.applies(condition, runtime)
                    && let Value::Object(inner) = represent(schema, object, &fragment.selections, Some(runtime))?
                {
                    out.extend(inner);
                }
            }
            SelectionItem::FragmentSpread(_) => {}
        }
    }
    Some(Value::Object(out))
}

/// A required field's value: leaves as they are, objects and lists (nested too) represented.
fn represent_value(schema: &SchemaIndex, value: &Value, selections: &SelectionSet) -> Option<Value> {
    match value {
        Value::Array(items) => items.iter().map(|item| represent_value(schema, item, selections)).collect(),
        Value::Object(_) if !selections.is_empty() => represent(schema, value, selections, None),
        leaf => Some(leaf.clone()),
    }
}

/// What a plan's rewrites edit: the merged `Value` of a plan with several
/// fetches, a representation, or a single fetch's answer as a light tree.
trait Rewritable: Sized {
    fn items_mut(&mut self) -> Option<&mut [Self]>;
    fn typename(&self) -> Option<&str>;
    fn field_mut(&mut self, key: &str) -> Option<&mut Self>;
    /// The field `key`, added as `null` when missing; `None` when this is no object.
    fn field_or_null(&mut self, key: &str) -> Option<&mut Self>;
    fn rename_field(&mut self, from: &str, to: &str);
    fn set_string(&mut self, value: &str);
}

impl Rewritable for Value {
    fn items_mut(&mut self) -> Option<&mut [Self]> {
        self.as_array_mut().map(Vec::as_mut_slice)
    }

    fn typename(&self) -> Option<&str> {
        self.get("__typename").and_then(Value::as_str)
    }

    fn field_mut(&mut self, key: &str) -> Option<&mut Self> {
        self.get_mut(key)
    }

    fn field_or_null(&mut self, key: &str) -> Option<&mut Self> {
        Some(self.as_object_mut()?.entry(key).or_insert(Value::Null))
    }

    fn rename_field(&mut self, from: &str, to: &str) {
        if let Some(object) = self.as_object_mut()
            && let Some(value) = object.remove(from)
        {
            object.insert(to.to_owned(), value);
        }
    }

    fn set_string(&mut self, value: &str) {
        *self = Value::String(value.to_owned());
    }
}

impl Rewritable for Node {
    fn items_mut(&mut self) -> Option<&mut [Self]> {
        match self {
            Node::List(items) => Some(items),
            _ => None,
        }
    }

    fn typename(&self) -> Option<&str> {
        match self {
            Node::Object(fields) => match Node::field(fields, "__typename") {
                Some(Node::String(t)) => Some(t),
                _ => None,
            },
            _ => None,
        }
    }

    fn field_mut(&mut self, key: &str) -> Option<&mut Self> {
        match self {
            Node::Object(fields) => fields.iter_mut().find(|(k, _)| &**k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn field_or_null(&mut self, key: &str) -> Option<&mut Self> {
        let Node::Object(fields) = self else { return None };
        let at = match fields.iter().position(|(k, _)| &**k == key) {
            Some(at) => at,
            None => {
                fields.push((key.into(), Node::Null));
                fields.len() - 1
            }
        };
        Some(&mut fields[at].1)
    }

    fn rename_field(&mut self, from: &str, to: &str) {
        if let Node::Object(fields) = self
            && let Some((key, _)) = fields.iter_mut().find(|(k, _)| &**k == from)
        {
            *key = to.into();
        }
    }

    fn set_string(&mut self, value: &str) {
        *self = Node::String(value.into());
    }
}

/// Applies each of `rewrites` to `value`.
fn apply_rewrites<T: Rewritable>(schema: &SchemaIndex, value: &mut T, rewrites: Option<&[FetchRewrite]>) {
    for rewrite in rewrites.unwrap_or_default() {
        match rewrite {
            FetchRewrite::ValueSetter(setter) => set_value(schema, value, &setter.path, &setter.set_value_to),
            FetchRewrite::KeyRenamer(renamer) => rename_key(schema, value, &renamer.path, &renamer.rename_key_to),
        }
    }
}

/// Rewrite paths name no list steps: a list met on the way is stepped into, item by item.
fn set_value<T: Rewritable>(schema: &SchemaIndex, value: &mut T, path: &[FetchNodePathSegment], to: &str) {
    if let Some(items) = value.items_mut() {
        items.iter_mut().for_each(|item| set_value(schema, item, path, to));
        return;
    }
    let Some((segment, rest)) = path.split_first() else {
        value.set_string(to);
        return;
    };
    match segment {
        FetchNodePathSegment::Key(key) => {
            if let Some(next) = value.field_or_null(key) {
                set_value(schema, next, rest, to);
            }
        }
        FetchNodePathSegment::TypenameEquals(types) => {
            if typename_applies(schema, value.typename(), types) {
                set_value(schema, value, rest, to);
            }
        }
    }
}

/// Undoes the planner's `_internal_qp_alias_N` aliases (its fix for same-named
/// fields of different types in one selection): the key at the end of `path`
/// gets its response name back.
fn rename_key<T: Rewritable>(schema: &SchemaIndex, value: &mut T, path: &[FetchNodePathSegment], to: &str) {
    if let Some(items) = value.items_mut() {
        items.iter_mut().for_each(|item| rename_key(schema, item, path, to));
        return;
    }
    match path.split_first() {
        Some((FetchNodePathSegment::Key(key), [])) => value.rename_field(key, to),
        Some((FetchNodePathSegment::Key(key), rest)) => {
            if let Some(next) = value.field_mut(key) {
                rename_key(schema, next, rest, to);
            }
        }
        Some((FetchNodePathSegment::TypenameEquals(types), rest))
            if typename_applies(schema, value.typename(), types) =>
        {
            rename_key(schema, value, rest, to)
        }
        Some((FetchNodePathSegment::TypenameEquals(_), _)) | None => {}
    }
}

/// Whether an object of type `typename` is one of `types` or implements one
/// of them. An object without `__typename` is taken to be one: the aliased key
/// a rewrite looks for is only there when the fragment that asked for it applied.
fn typename_applies(schema: &SchemaIndex, typename: Option<&str>, types: &std::collections::BTreeSet<String>) -> bool {
    typename.is_none_or(|t| types.iter().any(|condition| schema.applies(condition, t)))
}

/// Whether the object's `__typename` is one of `types` or implements one of them.
fn typename_matches(schema: &SchemaIndex, value: &Value, types: &std::collections::BTreeSet<String>) -> bool {
    let Some(typename) = value.get("__typename").and_then(Value::as_str) else { return false };
    types.iter().any(|t| schema.applies(t, typename))
}

fn value_at_mut<'v>(value: &'v mut Value, path: &[Value]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |current, segment| match segment {
        Value::String(key) => current.get_mut(key.as_str()),
        Value::Number(n) => current.get_mut(n.as_u64()? as usize),
        _ => None,
    })
}

/// Merges `source` into `target`: objects field by field, lists item by item.
pub fn deep_merge(target: &mut Value, source: Value) {
    match (target, source) {
        (Value::Object(t), Value::Object(s)) => {
            for (key, value) in s {
                match t.get_mut(&key) {
                    Some(existing) if !existing.is_null() => deep_merge(existing, value),
                    _ => {
                        t.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(s)) => {
            for (existing, value) in t.iter_mut().zip(s) {
                deep_merge(existing, value);
            }
        }
        (target, source) => *target = source,
    }
}
