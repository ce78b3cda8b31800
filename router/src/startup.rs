//! Building and running the router: the supergraph loaded, the pipeline, the
//! edge and the server set up, the background tasks run until shutdown. Its
//! HTTP handlers are [`crate::http`]'s.

use std::sync::Arc;

use arc_swap::ArcSwap;
use platform::TokenVerifier;
use platform::health::Health;
use tokio_util::sync::CancellationToken;

use crate::edge::Edge;
use crate::edge::client_ip::TrustedProxies;
use crate::edge::ratelimit::RateLimiter;
use crate::frontend::Frontend;
use crate::http::AppState;
use crate::pipeline::Router;
use crate::pipeline::prepare::PlanCache;
use crate::readiness::{SubgraphsCheck, SupergraphCheck};
use crate::subgraphs::SubgraphClient;
use crate::supergraph::{self, SharedSupergraph};
use crate::{SERVICE, Settings};

pub struct Application {
    server: platform::http::Server,
    supergraph: SharedSupergraph,
    current_sdl: String,
    settings: Settings,
    edge: Arc<Edge>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        crate::pipeline::describe_metrics();
        let (loaded, current_sdl) = supergraph::load_file(&settings.supergraph.path, &settings.subgraphs, 1)?;
        tracing::info!(
            path = %settings.supergraph.path.display(),
            subgraphs = ?loaded.subgraphs.values().map(|s| (&s.name, &s.url)).collect::<Vec<_>>(),
            "supergraph loaded"
        );
        let shared: SharedSupergraph = Arc::new(ArcSwap::from_pointee(loaded));
        let router = Arc::new(Router {
            supergraph: shared.clone(),
            cache: PlanCache::new(&settings.graphql),
            subgraphs: SubgraphClient::new(
                &settings.subgraphs.forward_headers,
                settings.subgraphs.breaker,
                settings.subgraphs.retry,
                settings.subgraphs.dedupe,
            ),
            requests: Default::default(),
            settings: settings.graphql.clone(),
        });
        let health = Health::new(
            SERVICE,
            vec![Box::new(SupergraphCheck(router.clone())), Box::new(SubgraphsCheck::new(router.clone()))],
        );
        let identity = &settings.edge_auth.identity;
        let verifier = settings.edge_auth.jwks_url.as_ref().map(|url| TokenVerifier::remote(identity, url));
        if verifier.is_none() {
            tracing::warn!("JWKS_URL=none: bearer tokens reach subgraphs unchecked by the router");
        }
        let limiter = settings.rate_limits.clone().map(|limits| Arc::new(RateLimiter::new(limits)));
        if limiter.is_none() {
            tracing::warn!("RATE_LIMIT_ENABLED=false: no rate limits");
        }
        let proxies = TrustedProxies(settings.trusted_proxies.clone());
        let edge = Arc::new(Edge { verifier, limiter, proxies });
        let frontend = settings.frontend_dir.as_deref().map(Frontend::open).transpose()?;
        let state = AppState {
            router,
            graphiql: settings.graphql.graphiql,
            csrf_prevention: settings.graphql.csrf_prevention,
            edge: edge.clone(),
            files_subgraph: settings.files_subgraph.clone().unwrap_or_default(),
            uploads: settings.uploads,
            json_body_limit: settings.json_body_limit,
            frontend,
        };
        let routes = crate::http::app(state, &settings);
        let server = platform::http::Server::bind(SERVICE, routes, health, &settings.http).await?;
        tracing::info!(address = %server.local_addr()?, admin = ?server.admin_addr(), "router listening");
        Ok(Self { server, supergraph: shared, current_sdl, settings, edge })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The admin listener's port (`/metrics`), unless `ADMIN_PORT=none`.
    pub fn admin_port(&self) -> Option<u16> {
        self.server.admin_port()
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let background = CancellationToken::new();
        let tasks = tokio_util::task::TaskTracker::new();
        tasks.spawn(supergraph::watch(
            self.supergraph,
            self.current_sdl,
            self.settings.supergraph.clone(),
            self.settings.subgraphs.clone(),
            background.clone(),
        ));
        if let Some(verifier) = self.edge.verifier.clone() {
            tasks.spawn(verifier.keep_fresh(background.clone()));
        }
        if let Some(limiter) = self.edge.limiter.clone() {
            let cancel = background.clone();
            tasks.spawn(async move { limiter.housekeeping(cancel).await });
        }
        self.server.serve_then_stop_background(shutdown, background, tasks).await;
        Ok(())
    }
}

impl platform::cli::Service for Application {
    type Settings = Settings;
    const NAME: &'static str = SERVICE;

    fn settings(env: &mut platform::Env) -> Settings {
        Settings::from_env(env)
    }

    fn telemetry(settings: &Settings) -> &platform::config::TelemetrySettings {
        &settings.telemetry
    }

    fn http(settings: &Settings) -> &platform::config::HttpSettings {
        &settings.http
    }

    /// The router serves the composed supergraph (`schema/supergraph.graphql`), not an SDL of its own.
    fn sdl() -> Option<String> {
        None
    }

    async fn build(settings: Settings) -> anyhow::Result<Self> {
        Application::build(settings).await
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        Application::run_until_stopped(self, shutdown).await
    }
}
