//! Executes a query plan. Fetches in a `Parallel` node run concurrently; each
//! one reads what it needs from the shared response under a short lock,
//! awaits its subgraph without holding it, then merges its answer.
//!
//! Answers are read into [`Node`] trees and merged into one: its objects keep
//! their fields in a `Vec`, so merging and walking hash nothing, and the
//! representations an entity fetch sends are written straight as JSON.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
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
use super::project::{Step, path_json};
use crate::subgraphs::{Decode, SubgraphClient, SubgraphError};
use crate::supergraph::{SchemaIndex, Supergraph};

mod errors;
mod merge;
mod representations;
mod rewrites;

pub use errors::PASSED_CODES;
use errors::{entity_errors, failure_error, subgraph_error};
pub use merge::deep_merge;
use merge::node_at_mut;
use representations::{Representations, collect_representations};
use rewrites::apply_rewrites;

pub struct Execution<'a> {
    supergraph: &'a Supergraph,
    client: &'a SubgraphClient,
    variables: &'a Map<String, Value>,
    headers: &'a HeaderMap,
    /// Mutation plans keep root fields strictly in order (see `parallel`).
    mutation: bool,
    data: Mutex<Node>,
    errors: Mutex<Vec<Value>>,
    waiting: Mutex<Waiting>,
    /// Subgraphs called, for the request log.
    called: Mutex<Vec<String>>,
    /// Files of a multipart request, for the fetch that uses them.
    uploads: Option<&'a Uploads>,
    /// What of a subgraph's errors the client sees (`SUBGRAPH_ERRORS`).
    error_mode: SubgraphErrors,
    /// Bytes of the answers merged: the response is written into a buffer of this size.
    received: AtomicUsize,
}

/// Wall time during which at least one subgraph request was in flight.
#[derive(Default)]
struct Waiting {
    in_flight: usize,
    since: Option<Instant>,
    total: Duration,
}

/// Where an entity sits in the response (its keys borrowed from the plan),
/// and its representation's index.
struct EntityLocation<'p> {
    path: Vec<Step<'p>>,
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
            data: Mutex::new(Node::Object(Vec::new())),
            errors: Mutex::new(Vec::new()),
            waiting: Mutex::new(Waiting::default()),
            called: Mutex::new(Vec::new()),
            uploads,
            error_mode,
            received: AtomicUsize::new(0),
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

    /// The length of the answers merged so far, in bytes.
    pub fn received_bytes(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }

    pub fn waited_seconds(&self) -> f64 {
        self.waiting.lock().expect("waiting lock").total.as_secs_f64()
    }

    pub fn into_parts(self) -> (Node, Vec<Value>) {
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
        let Some(answer) = self.root_call(fetch, read_answer).await else {
            return;
        };
        self.received.fetch_add(answer.size, Ordering::Relaxed);
        if let Some(errors) = answer.errors.as_ref().and_then(Value::as_array) {
            self.subgraph_errors(errors, &fetch.service_name);
        }
        if let Some(mut data) = answer.data.filter(Node::is_object) {
            apply_rewrites(&self.supergraph.schema, &mut data, fetch.output_rewrites.as_deref());
            deep_merge(&mut self.data.lock().expect("data lock"), data);
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
        self.call(&fetch.service_name, operation, &variables, &[], affected, decode).await
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
        if representations.count == 0 {
            return;
        }
        let variables = self.used_variables(fetch.variable_usages.iter().flatten());
        let lists = [("representations", &representations)];
        let entity_paths = || locations.iter().map(|l| path_json(&l.path)).collect();
        let operation = &fetch.operation.document_str;
        let Some(answer) =
            self.call(&fetch.service_name, operation, &variables, &lists, entity_paths, read_answer).await
        else {
            return;
        };
        self.received.fetch_add(answer.size, Ordering::Relaxed);
        self.entity_errors(answer.errors.as_ref(), &fetch.service_name, &[("_entities", &locations)]);
        let entities = answer.data.and_then(|mut data| data.take_field("_entities"));
        self.merge_entities(entities, &locations, fetch.output_rewrites.as_deref());
    }

    /// Several `_entities` fetches to one subgraph in one request, each under an alias.
    async fn batch_fetch(&self, batch: &BatchFetchNode) {
        let variables = self.used_variables(batch.variable_usages.iter().flatten());
        let mut per_alias = Vec::new();
        let mut lists = Vec::new();
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
                lists.push(reps);
                per_alias.push((alias, locations));
            }
        }
        if per_alias.iter().all(|(_, l)| l.is_empty()) {
            return;
        }
        let named: Vec<(&str, &Representations)> = per_alias
            .iter()
            .zip(&lists)
            .map(|((alias, _), list)| (alias.representations_variable_name.as_str(), list))
            .collect();
        let paths = || per_alias.iter().flat_map(|(_, ls)| ls.iter().map(|l| path_json(&l.path))).collect();
        let operation = &batch.operation.document_str;
        let Some(answer) = self.call(&batch.service_name, operation, &variables, &named, paths, read_answer).await
        else {
            return;
        };
        self.received.fetch_add(answer.size, Ordering::Relaxed);
        let located: Vec<(&str, &[EntityLocation<'_>])> =
            per_alias.iter().map(|(alias, locations)| (alias.alias.as_str(), locations.as_slice())).collect();
        self.entity_errors(answer.errors.as_ref(), &batch.service_name, &located);
        let mut data = answer.data;
        for (alias, locations) in &per_alias {
            let entities = data.as_mut().and_then(|d| d.take_field(&alias.alias));
            self.merge_entities(entities, locations, alias.output_rewrites.as_deref());
        }
    }

    /// Merges the entities of one `_entities` list (`entities`) into the
    /// places they belong: an entity at several places is copied for all but
    /// its last, where it moves.
    fn merge_entities(
        &self,
        entities: Option<Node>,
        locations: &[EntityLocation<'_>],
        output_rewrites: Option<&[FetchRewrite]>,
    ) {
        let Some(Node::List(mut entities)) = entities else { return };
        let mut places = vec![0u32; entities.len()];
        for location in locations {
            if let Some(count) = places.get_mut(location.representation) {
                *count += 1;
            }
        }
        for (entity, &count) in entities.iter_mut().zip(&places) {
            if count > 0 && entity.is_object() {
                apply_rewrites(&self.supergraph.schema, entity, output_rewrites);
            }
        }
        let mut data = self.data.lock().expect("data lock");
        for location in locations {
            let index = location.representation;
            let Some(entity) = entities.get_mut(index).filter(|e| e.is_object()) else { continue };
            places[index] -= 1;
            let entity = if places[index] == 0 { std::mem::take(entity) } else { entity.clone() };
            if let Some(target) = node_at_mut(&mut data, &location.path) {
                deep_merge(target, entity);
            }
        }
    }

    /// The errors of an `_entities` answer, each once for every place of the
    /// entity it names: `path` starts with the response key of its `_entities`
    /// list (`_entities`, or a batch's alias), then the representation's index.
    fn entity_errors(&self, errors: Option<&Value>, service: &str, lists: &[(&str, &[EntityLocation<'_>])]) {
        let Some(errors) = errors.and_then(Value::as_array) else { return };
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

    /// Sends one request, `lists` (representations) among its variables, and
    /// reads the answer with `decode`; on transport failure records an error
    /// per affected path (so partial data stays explained) and returns `None`.
    async fn call<T>(
        &self,
        service: &str,
        operation: &str,
        variables: &Map<String, Value>,
        lists: &[(&str, &Representations)],
        affected: impl FnOnce() -> Vec<Vec<Value>>,
        decode: Decode<T>,
    ) -> Option<T> {
        let Some(subgraph) = self.supergraph.subgraphs.get(service) else {
            self.push_error(graphql_error("The plan names an unknown subgraph", None, Some("INTERNAL")));
            return None;
        };
        let body = request_body(operation, variables, lists);
        {
            let mut called = self.called.lock().expect("called lock");
            if !called.iter().any(|c| c == service) {
                called.push(service.to_owned());
            }
        }
        self.begin_wait();
        let result = match self.uploads.filter(|u| u.used_by(variables)) {
            Some(uploads) => match uploads.take_body(body) {
                Some((stream, content_type, timeout)) => {
                    let blame_client = || uploads.client_at_fault();
                    let (client, headers) = (self.client, self.headers);
                    // Boxed: an upload's future is four times a fetch's, and unboxed it
                    // would size every fetch's future (and each copy of it) to fit.
                    Box::pin(client.send_multipart(
                        subgraph,
                        stream,
                        &content_type,
                        headers,
                        timeout,
                        &blame_client,
                        decode,
                    ))
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

/// A subgraph request's body, `{"query":…,"variables":{…}}`, written without
/// copying the operation or the representations into JSON values first.
fn request_body(query: &str, variables: &Map<String, Value>, lists: &[(&str, &Representations)]) -> Vec<u8> {
    let size = query.len() + 64 + lists.iter().map(|(name, list)| name.len() + list.json.len() + 4).sum::<usize>();
    let mut body = Vec::with_capacity(size);
    // Writing strings and values into memory cannot fail.
    body.extend_from_slice(b"{\"query\":");
    super::answer::write_str(&mut body, query);
    body.extend_from_slice(b",\"variables\":{");
    let mut first = true;
    let mut separate = |body: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            body.push(b',');
        }
    };
    for (name, value) in variables {
        separate(&mut body);
        let _ = serde_json::to_writer(&mut body, name);
        body.push(b':');
        let _ = serde_json::to_writer(&mut body, value);
    }
    for (name, list) in lists {
        separate(&mut body);
        let _ = serde_json::to_writer(&mut body, name);
        body.push(b':');
        body.extend_from_slice(&list.json);
    }
    body.extend_from_slice(b"}}");
    body
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
