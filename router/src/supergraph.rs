//! The loaded supergraph: planner, public API schema, subgraph endpoints, and
//! the indexes the request path needs. Swapped whole on reload, so a request
//! always sees one consistent version.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use graphql_tools::static_graphql::schema::{self, Definition, Type, TypeDefinition};
use graphql_tools::validation::rules::default_rules_validation_plan;
use graphql_tools::validation::validate::ValidationPlan;
use hive_router_query_planner::planner::{Planner, QueryPlannerOptions};
use rustc_hash::{FxHashMap, FxHashSet};
use tokio_util::sync::CancellationToken;

use crate::config::{SubgraphSettings, SupergraphSettings};
use crate::pipeline::introspection::IntrospectionSchema;
pub use crate::pipeline::introspection::Kind;
use crate::pipeline::limits::PageDefaults;
use crate::pipeline::variables::InputTypes;
use crate::subgraphs::connector::Connector;
use crate::subgraphs::pool::Pool;

/// One subgraph as the router calls it.
#[derive(Debug, Clone)]
pub struct Subgraph {
    pub name: String,
    /// `name` as a metric label: cloned per request without allocating.
    pub label: metrics::SharedString,
    /// Its request metrics, registered when the supergraph is built.
    pub metrics: Arc<crate::subgraphs::SubgraphMetrics>,
    pub url: String,
    /// Its connections: kept alive for GraphQL fetches, one of its own per streamed body.
    pub pool: Arc<crate::subgraphs::pool::Pool>,
    pub timeout: Duration,
}

pub struct Supergraph {
    pub planner: Planner,
    /// The public schema: no join/link internals, no @inaccessible elements.
    pub api_schema: Arc<schema::Document>,
    pub schema: SchemaIndex,
    pub introspection: IntrospectionSchema,
    /// Page sizes the cost limit counts for paged fields called without `first`/`last`.
    pub page_defaults: PageDefaults,
    /// Input types, for coercing variables.
    pub inputs: InputTypes,
    pub validation: ValidationPlan,
    pub subgraphs: HashMap<String, Subgraph>,
    /// Distinguishes versions in plan-cache keys.
    pub version: u64,
}

impl Supergraph {
    pub fn from_sdl(sdl: &str, settings: &SubgraphSettings, version: u64) -> anyhow::Result<Self> {
        let document = hive_router_query_planner::utils::parsing::safe_parse_schema(sdl)
            .map_err(|e| anyhow::anyhow!("the supergraph does not parse: {e}"))?;
        let planner = Planner::new_from_supergraph(&document, QueryPlannerOptions::default())
            .map_err(|e| anyhow::anyhow!("the supergraph cannot be planned over: {e}"))?;
        let api_schema = planner.consumer_schema.document.clone();
        // Read once per supergraph: a reload picks up rotated certificates.
        let connector = Arc::new(Connector::new(settings.protocol, &settings.tls)?);
        let subgraphs = planner
            .supergraph
            .subgraph_endpoint_map
            .iter()
            .map(|(name, url)| {
                let key = name.to_ascii_lowercase();
                let url = settings.url_overrides.get(&key).cloned().unwrap_or_else(|| url.clone());
                let uri: axum::http::Uri =
                    url.parse().map_err(|e| anyhow::anyhow!("subgraph {name} has an invalid URL {url:?}: {e}"))?;
                let (accept, max_body) = (crate::subgraphs::ACCEPT, settings.max_response_bytes);
                let connect_timeout = settings.connect_timeout(&key);
                let mut pool =
                    Pool::new(&uri, accept, max_body, settings.connections, connector.clone(), connect_timeout)
                        .map_err(|e| anyhow::anyhow!("subgraph {name} has URL {url:?}: {e}"))?;
                if let Some(secret) = crate::subgraphs::secret_header(&settings.secret) {
                    pool = pool.with_header(&kit::http::ROUTER_SECRET_HEADER, &secret);
                }
                let label = metrics::SharedString::from(std::sync::Arc::<str>::from(name.as_str()));
                let subgraph_metrics = Arc::new(crate::subgraphs::SubgraphMetrics::default());
                subgraph_metrics.register(&label);
                let subgraph = Subgraph {
                    name: name.clone(),
                    label,
                    metrics: subgraph_metrics,
                    url,
                    pool: Arc::new(pool),
                    timeout: settings.timeout(&key),
                };
                Ok((name.clone(), subgraph))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            schema: SchemaIndex::new(&api_schema),
            introspection: IntrospectionSchema::new(&api_schema),
            page_defaults: PageDefaults::new(&api_schema),
            inputs: InputTypes::new(&api_schema),
            validation: default_rules_validation_plan(),
            planner,
            api_schema,
            subgraphs,
            version,
        })
    }
}

impl Supergraph {
    /// Takes over `previous`'s keep-alive connections for every subgraph whose
    /// URL is unchanged, so that a reload does not reconnect them all at once.
    pub fn keep_connections_of(&mut self, previous: &Supergraph) {
        for (name, subgraph) in &mut self.subgraphs {
            if let Some(old) = previous.subgraphs.get(name).filter(|old| old.url == subgraph.url) {
                subgraph.pool = old.pool.clone();
            }
        }
    }
}

/// What projection needs to know of the API schema.
#[derive(Default)]
pub struct SchemaIndex {
    pub query_type: String,
    pub mutation_type: Option<String>,
    pub subscription_type: Option<String>,
    // Fx hashing: these are hit for every field of every response.
    kinds: FxHashMap<String, Kind>,
    /// type → field → declared output type (nested, so lookups borrow, never allocate).
    fields: FxHashMap<String, FxHashMap<String, Type>>,
    /// Abstract type → the object types it may be at runtime.
    possible: FxHashMap<String, FxHashSet<String>>,
    /// Enum → its values in the API schema (`@inaccessible` ones are not).
    enum_values: FxHashMap<String, FxHashSet<String>>,
}

impl SchemaIndex {
    pub fn new(doc: &schema::Document) -> Self {
        let mut index = SchemaIndex::default();
        let mut roots: HashMap<&str, String> = HashMap::new();
        for definition in &doc.definitions {
            match definition {
                Definition::SchemaDefinition(s) => {
                    if let Some(q) = &s.query {
                        roots.insert("query", q.clone());
                    }
                    if let Some(m) = &s.mutation {
                        roots.insert("mutation", m.clone());
                    }
                    if let Some(s) = &s.subscription {
                        roots.insert("subscription", s.clone());
                    }
                }
                Definition::TypeDefinition(t) => index.add_type(t),
                _ => {}
            }
        }
        let named = |root: &str, default: &str, index: &SchemaIndex| {
            roots.get(root).cloned().or_else(|| index.kinds.contains_key(default).then(|| default.to_owned()))
        };
        index.query_type = named("query", "Query", &index).unwrap_or_else(|| "Query".to_owned());
        index.mutation_type = named("mutation", "Mutation", &index);
        index.subscription_type = named("subscription", "Subscription", &index);
        index
    }

    fn add_type(&mut self, t: &TypeDefinition) {
        match t {
            TypeDefinition::Scalar(s) => {
                self.kinds.insert(s.name.clone(), Kind::Scalar);
            }
            TypeDefinition::Enum(e) => {
                self.kinds.insert(e.name.clone(), Kind::Enum);
                self.enum_values.insert(e.name.clone(), e.values.iter().map(|v| v.name.clone()).collect());
            }
            TypeDefinition::InputObject(i) => {
                self.kinds.insert(i.name.clone(), Kind::InputObject);
            }
            TypeDefinition::Object(o) => {
                self.kinds.insert(o.name.clone(), Kind::Object);
                self.add_fields(&o.name, &o.fields);
                for interface in &o.implements_interfaces {
                    self.possible.entry(interface.clone()).or_default().insert(o.name.clone());
                }
            }
            TypeDefinition::Interface(i) => {
                self.kinds.insert(i.name.clone(), Kind::Interface);
                self.add_fields(&i.name, &i.fields);
                self.possible.entry(i.name.clone()).or_default();
            }
            TypeDefinition::Union(u) => {
                self.kinds.insert(u.name.clone(), Kind::Union);
                self.possible.entry(u.name.clone()).or_default().extend(u.types.iter().cloned());
            }
        }
    }

    fn add_fields(&mut self, type_name: &str, fields: &[schema::Field]) {
        let by_name = self.fields.entry(type_name.to_owned()).or_default();
        for field in fields {
            by_name.insert(field.name.clone(), field.field_type.clone());
        }
    }

    /// The schema's own copy of a type name (lets callers borrow it for as long as the schema lives).
    pub fn type_name(&self, type_name: &str) -> Option<&str> {
        self.kinds.get_key_value(type_name).map(|(k, _)| k.as_str())
    }

    pub fn kind(&self, type_name: &str) -> Option<Kind> {
        self.kinds.get(type_name).copied()
    }

    pub fn field_type(&self, type_name: &str, field: &str) -> Option<&Type> {
        self.fields.get(type_name)?.get(field)
    }

    /// Whether a fragment on `condition` applies to an object of runtime type `object_type`.
    pub fn applies(&self, condition: &str, object_type: &str) -> bool {
        condition == object_type || self.possible.get(condition).is_some_and(|p| p.contains(object_type))
    }

    /// Whether `value` is one of the enum's values in the API schema.
    pub fn enum_has(&self, enum_type: &str, value: &str) -> bool {
        self.enum_values.get(enum_type).is_some_and(|values| values.contains(value))
    }

    pub fn is_abstract(&self, type_name: &str) -> bool {
        matches!(self.kind(type_name), Some(Kind::Interface | Kind::Union))
    }
}

/// The supergraph in service, replaced atomically on reload.
pub type SharedSupergraph = Arc<ArcSwap<Supergraph>>;

/// Reads and builds the supergraph from a file.
pub fn load_file(path: &Path, settings: &SubgraphSettings, version: u64) -> anyhow::Result<(Supergraph, String)> {
    let sdl = std::fs::read_to_string(path).with_context(|| format!("reading the supergraph {}", path.display()))?;
    let supergraph = Supergraph::from_sdl(&sdl, settings, version)?;
    Ok((supergraph, sdl))
}

/// Polls the supergraph file; a changed file that builds replaces the schema in
/// service, a broken one is logged and ignored. Requests in flight keep the
/// version they started with.
pub async fn watch(
    shared: SharedSupergraph,
    mut current_sdl: String,
    settings: SupergraphSettings,
    subgraphs: SubgraphSettings,
    cancel: CancellationToken,
) {
    for outcome in ["success", "refused"] {
        metrics::counter!("supergraph_reloads_total", "outcome" => outcome).absolute(0);
    }
    let mut version = shared.load().version;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(settings.poll_interval) => {}
        }
        let Ok(sdl) = tokio::fs::read_to_string(&settings.path).await else {
            continue;
        };
        if sdl == current_sdl {
            continue;
        }
        version += 1;
        let built = {
            let sdl = sdl.clone();
            let subgraphs = subgraphs.clone();
            tokio::task::spawn_blocking(move || Supergraph::from_sdl(&sdl, &subgraphs, version)).await
        };
        match built {
            Ok(Ok(mut supergraph)) => {
                supergraph.keep_connections_of(&shared.load());
                shared.store(Arc::new(supergraph));
                tracing::info!(path = %settings.path.display(), version, "supergraph reloaded");
                metrics::counter!("supergraph_reloads_total", "outcome" => "success").increment(1);
            }
            Ok(Err(e)) => {
                tracing::error!(error = %format!("{e:#}"), "refusing the changed supergraph; keeping the one in service");
                metrics::counter!("supergraph_reloads_total", "outcome" => "refused").increment(1);
            }
            Err(e) => tracing::error!(error = %e, "supergraph build panicked; keeping the one in service"),
        }
        current_sdl = sdl;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(overrides: &[(&str, &str)], version: u64) -> Supergraph {
        let sdl = include_str!("../benches/fixtures/supergraph.graphql");
        let env = &mut kit::Env::from_pairs(overrides.iter().copied());
        let settings = crate::Settings::from_env(env).subgraphs;
        Supergraph::from_sdl(sdl, &settings, version).expect("fixture builds")
    }

    #[test]
    fn a_reload_keeps_the_connections_of_subgraphs_whose_url_is_unchanged() {
        let before = build(&[], 1);
        let mut after = build(&[("SUBGRAPH_REVIEWS_URL", "http://127.0.0.1:1/graphql")], 2);
        after.keep_connections_of(&before);
        let same = |name: &str| Arc::ptr_eq(&before.subgraphs[name].pool, &after.subgraphs[name].pool);
        assert!(same("products") && same("accounts"));
        assert!(!same("reviews"), "a moved subgraph gets new connections");
    }
}
