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

mod errors;
mod merge;
mod representations;
mod rewrites;

pub use errors::PASSED_CODES;
use errors::{entity_errors, failure_error, subgraph_error};
pub use merge::deep_merge;
use merge::value_at_mut;
use representations::collect_representations;
use rewrites::apply_rewrites;

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
            collect_representations(&self.supergraph.schema, &data, [path], requires, fetch.input_rewrites.as_deref())
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
                let (reps, locations) = collect_representations(
                    &self.supergraph.schema,
                    &data,
                    &alias.merge_paths,
                    Some(&alias.requires),
                    alias.input_rewrites.as_deref(),
                );
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
