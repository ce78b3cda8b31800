//! The request path, one stage per file:
//! request (HTTP → GraphQL requests) → prepare (limits, parse, validate, plan;
//! cached, refusals too; a miss on the blocking pool) → variables (coerced to
//! their declared types) → execute (run the plan against subgraphs) → project
//! (shape the response). Identical queries in flight share one execution.

pub mod answer;
pub mod error;
pub mod execute;
pub mod limits;
pub mod multipart;
pub mod prepare;
pub mod project;
pub mod request;
pub mod response;
mod telemetry;

pub use telemetry::describe as describe_metrics;
pub mod variables;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderMap;
use hive_router_query_planner::planner::plan_nodes::{FetchNode, PlanNode};
use serde_json::{Map, Value};

use crate::config::GraphqlSettings;
use crate::subgraphs::SubgraphClient;
use crate::subgraphs::dedupe::{self, Inflight};
use crate::supergraph::SharedSupergraph;
use error::RequestError;
use prepare::{OperationType, PlanCache};
use request::GraphqlRequest;
use response::GraphqlResponse;

/// Everything a request needs, shared by all requests.
pub struct Router {
    pub supergraph: SharedSupergraph,
    pub cache: PlanCache,
    pub subgraphs: SubgraphClient,
    pub settings: GraphqlSettings,
    /// Query executions in flight, for identical requests to share (`REQUEST_DEDUPE`).
    pub requests: Inflight<Arc<Executed>>,
}

/// An executed operation: its response, the time spent waiting on subgraphs
/// and the subgraphs called.
#[derive(Clone)]
pub struct Executed {
    response: GraphqlResponse,
    waited: f64,
    called: Vec<String>,
}

/// What the pipeline asks of whoever let the request in (the edge's
/// `Admission`): to charge the operation's own rate limits (`login`,
/// `changePassword`...) once its root fields are known.
pub trait Admitted: Sync {
    fn charge_operation(&self, root_fields: &[String]) -> impl Future<Output = Result<(), RequestError>> + Send;

    /// The user whose token was verified, if any.
    fn user_id(&self) -> Option<uuid::Uuid>;
}

/// How the request arrived, for the rules that depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Post,
    Get,
}

impl Router {
    /// Runs one GraphQL request through every stage.
    pub async fn run(
        &self,
        request: GraphqlRequest,
        headers: &HeaderMap,
        transport: Transport,
        admission: &impl Admitted,
        uploads: Option<&multipart::Uploads>,
    ) -> GraphqlResponse {
        let started = Instant::now();
        let supergraph = self.supergraph.load_full();
        let prepared = match self.cache.prepare(&supergraph, &request, &self.settings).await {
            Ok(prepared) => prepared,
            Err(e) => return self.finish(GraphqlResponse::request_error(e), None, started, 0.0, &[]),
        };
        if transport == Transport::Get && prepared.operation_type != OperationType::Query {
            let response = GraphqlResponse::request_error(RequestError::MutationOverGet);
            return self.finish(response, Some(&prepared), started, 0.0, &[]);
        }
        if let Some(Err(e)) = uploads.map(|u| u.check_types(&prepared)) {
            return self.finish(GraphqlResponse::request_error(e), Some(&prepared), started, 0.0, &[]);
        }
        if let Err(e) = admission.charge_operation(&prepared.root_fields).await {
            return self.finish(GraphqlResponse::request_error(e), Some(&prepared), started, 0.0, &[]);
        }
        let variables = match prepared.coerce_variables(&supergraph.inputs, request.variables.unwrap_or_default()) {
            Ok(v) => v,
            Err(e) => return self.finish(GraphqlResponse::request_error(e), Some(&prepared), started, 0.0, &[]),
        };
        let forwarded = self.subgraphs.forwarded_headers(headers);
        let shareable =
            self.settings.request_dedupe && prepared.operation_type == OperationType::Query && uploads.is_none();
        let executed = if shareable {
            let (query, name) = (request.query.as_deref().unwrap_or(""), request.operation_name.as_deref());
            let key = request_key(&supergraph, query, name, &variables, &forwarded, admission.user_id());
            let execute = || async {
                Arc::new(Box::pin(self.execute(&supergraph, &prepared, &variables, &forwarded, None)).await)
            };
            let executed = self.requests.run(key, execute, || telemetry::get().deduplicated()).await;
            // The last holder takes it; others copy it.
            Arc::try_unwrap(executed).unwrap_or_else(|shared| (*shared).clone())
        } else {
            Box::pin(self.execute(&supergraph, &prepared, &variables, &forwarded, uploads)).await
        };
        let Executed { response, waited, called } = executed;
        self.finish(response, Some(&prepared), started, waited, &called)
    }

    /// Runs the prepared operation's plan and shapes the response. Callers box
    /// its future: it is large, and unboxed it would be copied, whole, each
    /// time the request's future moves on its way to the runtime.
    async fn execute(
        &self,
        supergraph: &crate::supergraph::Supergraph,
        prepared: &prepare::Prepared,
        variables: &Map<String, Value>,
        forwarded: &HeaderMap,
        uploads: Option<&multipart::Uploads>,
    ) -> Executed {
        let mutation = prepared.operation_type == OperationType::Mutation;
        let errors = self.settings.subgraph_errors;
        let run = execute::Execution::new(supergraph, &self.subgraphs, variables, forwarded, mutation, uploads, errors);
        // The commonest plan, one root fetch, has nothing to merge: its answer
        // is read into a light tree and projected straight from it.
        let only_fetch = match prepared.plan.as_ref().and_then(|plan| plan.node.as_ref()) {
            Some(PlanNode::Fetch(fetch)) if !prepared.has_introspection && uploads.is_none() => Some(fetch),
            _ => None,
        };
        if let Some(fetch) = only_fetch {
            let answer = run.only_fetch(fetch).await;
            let (waited, called) = (run.waited_seconds(), run.subgraphs_called());
            let (data, errors) = project_answer(supergraph, prepared, variables, run, fetch, answer);
            return Executed { response: GraphqlResponse::executed(data, errors), waited, called };
        }
        if let Some(plan) = &prepared.plan {
            run.run(plan).await;
        }
        // A broken or oversized upload is the client's fault, not the subgraph's.
        if let Some(e) = uploads.and_then(|u| u.failure()) {
            let (waited, called) = (run.waited_seconds(), run.subgraphs_called());
            return Executed { response: GraphqlResponse::request_error(e), waited, called };
        }
        let waited = run.waited_seconds();
        let called = run.subgraphs_called();
        // Entities reached along several paths are written out at each: room for that.
        let capacity = 2 * run.received_bytes();
        let (mut data, mut errors) = run.into_parts();
        if prepared.has_introspection {
            introspect(supergraph, prepared, variables, &mut data, &mut errors);
        }
        let mut body = GraphqlResponse::data_buffer(capacity);
        project::project(&supergraph.schema, prepared, &data, variables, &mut errors, &mut body);
        Executed { response: GraphqlResponse::executed(body, errors), waited, called }
    }

    fn finish(
        &self,
        response: GraphqlResponse,
        prepared: Option<&prepare::Prepared>,
        started: Instant,
        waited: f64,
        subgraphs: &[String],
    ) -> GraphqlResponse {
        let elapsed = started.elapsed().as_secs_f64();
        let operation_type = prepared.map(|p| p.operation_type.as_str()).unwrap_or("unknown");
        let outcome = response.outcome();
        let metrics = telemetry::get();
        metrics.operation(prepared.map(|p| p.operation_type), outcome, elapsed, (elapsed - waited).max(0.0));
        metrics.errors(&response.errors);
        if let Some(prepared) = prepared {
            prepared.by_name.increment(1);
        }
        tracing::info!(
            operation_name = prepared.and_then(|p| p.operation_name.as_deref()).unwrap_or(""),
            operation_type,
            outcome,
            duration_ms = elapsed * 1000.0,
            subgraph_wait_ms = waited * 1000.0,
            subgraphs = %subgraphs.join(","),
            "graphql operation"
        );
        response
    }
}

/// What identifies an execution for sharing: the supergraph's version, the
/// document and operation name, the coerced variables, and whatever tells one
/// client from another to subgraphs: the verified user and every forwarded
/// header (the token among them; correlation headers aside, see
/// [`dedupe::CORRELATION_HEADERS`]). Two users never share an answer.
fn request_key(
    supergraph: &crate::supergraph::Supergraph,
    query: &str,
    operation_name: Option<&str>,
    variables: &Map<String, Value>,
    forwarded: &HeaderMap,
    user: Option<uuid::Uuid>,
) -> Vec<u8> {
    let mut key = Vec::with_capacity(query.len() + 256);
    key.extend_from_slice(&supergraph.version.to_le_bytes());
    match user {
        Some(user) => dedupe::push_field(&mut key, user.as_bytes()),
        None => dedupe::push_field(&mut key, b""),
    }
    dedupe::push_field(&mut key, query.as_bytes());
    dedupe::push_field(&mut key, operation_name.unwrap_or("").as_bytes());
    // A field of its own: its length first, then the JSON (writing into memory cannot fail).
    let at = key.len();
    key.extend_from_slice(&[0; 8]);
    let _ = serde_json::to_writer(&mut key, variables);
    let length = (key.len() - at - 8) as u64;
    key[at..at + 8].copy_from_slice(&length.to_le_bytes());
    dedupe::push_headers(&mut key, forwarded);
    key
}

/// The response of a one-fetch plan, projected straight from the subgraph's
/// answer: its body so far, as [`GraphqlResponse::executed`] takes it, and its errors.
fn project_answer(
    supergraph: &crate::supergraph::Supergraph,
    prepared: &prepare::Prepared,
    variables: &Map<String, Value>,
    run: execute::Execution<'_>,
    fetch: &FetchNode,
    answer: Option<answer::Answer>,
) -> (Vec<u8>, Vec<Value>) {
    let (data, subgraph_errors, capacity) = match answer {
        Some(answer::Answer { data, errors, size }) => (data.unwrap_or(answer::Node::Null), errors, size),
        None => (answer::Node::Null, None, 0),
    };
    if let Some(errors) = subgraph_errors.as_ref().and_then(Value::as_array) {
        run.subgraph_errors(errors, &fetch.service_name);
    }
    let (_, mut errors) = run.into_parts();
    let mut body = GraphqlResponse::data_buffer(capacity);
    project::project(&supergraph.schema, prepared, &data, variables, &mut errors, &mut body);
    (body, errors)
}

/// Answers the root `__schema` / `__type` fields into `data`.
fn introspect(
    supergraph: &crate::supergraph::Supergraph,
    prepared: &prepare::Prepared,
    variables: &Map<String, Value>,
    data: &mut answer::Node,
    errors: &mut Vec<Value>,
) {
    if !data.is_object() {
        *data = answer::Node::Object(Vec::new());
    }
    let answer::Node::Object(target) = data else { return };
    for field in prepared.root_introspection_fields(variables) {
        let key = field.alias.clone().unwrap_or_else(|| field.name.clone());
        match supergraph.introspection.resolve_root_field(field, &prepared.fragments, variables) {
            Ok(value) => {
                let value = answer::Node::from(value);
                match target.iter_mut().find(|(k, _)| **k == *key) {
                    Some((_, existing)) => *existing = value,
                    None => target.push((key.into(), value)),
                }
            }
            Err(message) => errors.push(error::graphql_error(&message, Some(vec![Value::String(key)]), None)),
        }
    }
}

pub type SharedRouter = Arc<Router>;
