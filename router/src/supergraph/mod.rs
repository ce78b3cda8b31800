//! The loaded supergraph: planner, public API schema, subgraph endpoints, and
//! the indexes the request path needs. Swapped whole on reload, so a request
//! always sees one consistent version. The indexes are this folder's files
//! ([`schema_index`], [`inputs`], [`pages`]) and introspection's.

pub mod inputs;
pub mod pages;
pub mod schema_index;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use graphql_tools::static_graphql::schema;
use graphql_tools::validation::rules::default_rules_validation_plan;
use graphql_tools::validation::validate::ValidationPlan;
use hive_router_query_planner::planner::{Planner, QueryPlannerOptions};
use tokio_util::sync::CancellationToken;

use crate::config::{SubgraphSettings, SupergraphSettings};
use crate::introspection::IntrospectionSchema;
/// A type's kind, as [`SchemaIndex::kind`] tells it.
pub use crate::introspection::Kind;
use crate::subgraphs::Subgraph;
use crate::subgraphs::connector::Connector;
use inputs::InputTypes;
use pages::PageDefaults;
pub use schema_index::SchemaIndex;

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
                Ok((name.clone(), Subgraph::connect(name, url, &key, settings, &connector)?))
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
            if let Some(old) = previous.subgraphs.get(name) {
                subgraph.keep_connections_of(old);
            }
        }
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
        let sdl = include_str!("../../benches/fixtures/supergraph.graphql");
        let env = &mut platform::Env::from_pairs(overrides.iter().copied());
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
