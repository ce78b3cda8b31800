//! The monolith's settings: each service's own settings, read from one
//! environment with a few rules of its own (see README, "One process").
//!
//! - Subgraphs listen on 127.0.0.1 (only the router faces clients), on
//!   `AUTH_PORT`, `TASKS_PORT`, `FILES_PORT` (4001 to 4003); the router on `HOST`
//!   (127.0.0.1 here) and `PORT` (4000).
//! - One admin listener (`/metrics`) for the whole process, the router's
//!   (`ADMIN_HOST`, `ADMIN_PORT`: 5000): the four services share one metrics
//!   registry, so the subgraphs open none.
//! - `<SERVICE>_<NAME>` sets `<NAME>` for that service alone, e.g.
//!   `TASKS_USER_DELETED_QUEUE` or `ROUTER_REQUEST_TIMEOUT`.
//! - The subgraphs answer only the router: unless `SUBGRAPH_SHARED_SECRET` (or
//!   `_FILE`) is set, a random secret is made at start and given to all four.
//! - Only the router waits `SHUTDOWN_DELAY` at shutdown: nothing balances load
//!   over the loopback subgraphs, which stop after it.
//! - `REDIS_URL` or `RABBITMQ_URL` (also read as `AMQP_URL`) empty or `none`:
//!   an in-process cache or event bus, which is correct only because one process
//!   serves everything.

use std::collections::HashMap;
use std::time::Duration;

use kit::config::{CacheBackend, ConfigError, Env, TelemetrySettings};

/// The services of the monolith and the prefix of their own variables.
const SERVICES: [(&str, &str); 4] =
    [("auth", "AUTH_"), ("tasks", "TASKS_"), ("files", "FILES_"), ("router", "ROUTER_")];
const DEFAULT_MEMORY_CACHE_BYTES: usize = 64 << 20;
const SUBGRAPH_HOST: &str = "127.0.0.1";
/// The router's default, relative to the working directory.
const DEFAULT_SUPERGRAPH: &str = "schema/supergraph.graphql";
/// The web app as `npm run build` in frontend/ leaves it, relative to the working directory.
const DEFAULT_FRONTEND: &str = "frontend/dist";

#[derive(Debug, Clone)]
pub struct Settings {
    pub telemetry: TelemetrySettings,
    pub auth: auth::Settings,
    pub tasks: tasks::Settings,
    pub files: files::Settings,
    pub router: router::Settings,
    pub cache: CacheMode,
    pub events: EventsMode,
}

/// Where the tasks cache lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheMode {
    /// Redis, at this URL with any password hidden (for printing).
    Redis { shown_url: String },
    /// `REDIS_URL` empty or `none`: process memory, at most `max_bytes`.
    InProcess { max_bytes: usize },
}

/// How events travel from auth's outbox to the tasks and files consumers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsMode {
    /// RabbitMQ, at this URL with any password hidden (for printing).
    RabbitMq { shown_url: String },
    /// `RABBITMQ_URL` (or `AMQP_URL`) empty or `none`: the in-process bus.
    InProcess,
}

impl Settings {
    /// The settings from the process environment.
    pub fn from_process() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// The settings from explicit variables (tests).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut vars: HashMap<String, String> = vars.into_iter().collect();
        let mut problems = Vec::new();
        // A laptop default: the whole API on loopback, human-readable logs, and
        // only warnings (the banner says where things are; LOG_LEVEL=info shows requests).
        vars.entry("HOST".into()).or_insert_with(|| "127.0.0.1".into());
        vars.entry("LOG_FORMAT".into()).or_insert_with(|| "pretty".into());
        vars.entry("LOG_LEVEL".into()).or_insert_with(|| "warn".into());
        if !vars.contains_key("SUBGRAPH_SHARED_SECRET") && !vars.contains_key("SUBGRAPH_SHARED_SECRET_FILE") {
            vars.insert("SUBGRAPH_SHARED_SECRET".into(), kit::config::SubgraphSecret::random_value());
        }
        if !vars.contains_key("SUPERGRAPH_PATH") && !std::path::Path::new(DEFAULT_SUPERGRAPH).exists() {
            // Started outside the repository root: use the checkout it was built from.
            vars.insert(
                "SUPERGRAPH_PATH".into(),
                concat!(env!("CARGO_MANIFEST_DIR"), "/schema/supergraph.graphql").into(),
            );
        }
        if !vars.contains_key("FRONTEND_DIR")
            && !vars.contains_key("ROUTER_FRONTEND_DIR")
            && let Some(dir) = built_frontend()
        {
            vars.insert("FRONTEND_DIR".into(), dir);
        }
        if vars.contains_key("USER_DELETED_QUEUE") {
            // Shared, it would make tasks and files compete for one queue's events.
            problems.push(
                "USER_DELETED_QUEUE must be unset in one process (set TASKS_USER_DELETED_QUEUE and \
                 FILES_USER_DELETED_QUEUE instead)"
                    .to_owned(),
            );
        }
        let events = events_mode(&mut vars, &mut problems);
        let cache = cache_mode(&mut vars, &mut problems);

        let mut shared = Env::from_pairs(vars.clone());
        let telemetry = TelemetrySettings::from_env(&mut shared);
        collect(shared.finish(), &mut problems);
        let auth = load::<auth::Application>(service_env(&vars, "auth", 4001), &mut problems);
        let tasks = load::<tasks::Application>(service_env(&vars, "tasks", 4002), &mut problems);
        let files = load::<files::Application>(service_env(&vars, "files", 4003), &mut problems);
        let router = load::<router::Application>(service_env(&vars, "router", 4000), &mut problems);
        match (auth, tasks, files, router) {
            (Some(auth), Some(tasks), Some(files), Some(router)) if problems.is_empty() => {
                Ok(Self { telemetry, auth, tasks, files, router, cache, events })
            }
            _ => {
                // The services share most variables: one line per problem, not per service.
                let mut seen = std::collections::HashSet::new();
                problems.retain(|line| seen.insert(line.clone()));
                Err(ConfigError(problems))
            }
        }
    }

    /// The in-process cache applied to the services' settings (the in-process
    /// bus is no setting: the caller hands it to every service it builds).
    pub(crate) fn apply_modes(&mut self) {
        if let CacheMode::InProcess { max_bytes } = self.cache {
            self.tasks.cache.backend = CacheBackend::Memory { max_bytes };
        }
    }
}

fn load<S: kit::cli::Service>(env: Env, problems: &mut Vec<String>) -> Option<S::Settings> {
    match kit::cli::load::<S>(env) {
        Ok(settings) => Some(settings),
        Err(e) => {
            problems.extend(e.0);
            None
        }
    }
}

fn collect(result: Result<(), ConfigError>, problems: &mut Vec<String>) {
    if let Err(e) = result {
        problems.extend(e.0);
    }
}

/// The built app, when there is one: here, or in the checkout the binary was built from.
fn built_frontend() -> Option<String> {
    let checkout = concat!(env!("CARGO_MANIFEST_DIR"), "/frontend/dist");
    [DEFAULT_FRONTEND, checkout]
        .into_iter()
        .find(|dir| std::path::Path::new(dir).join("index.html").is_file())
        .map(str::to_owned)
}

/// `RABBITMQ_URL`, or `AMQP_URL` (the name the issue uses) when only that is set.
fn events_mode(vars: &mut HashMap<String, String>, problems: &mut Vec<String>) -> EventsMode {
    if let Some(alias) = vars.remove("AMQP_URL") {
        match vars.get("RABBITMQ_URL") {
            Some(url) if url.trim() != alias.trim() => {
                problems.push("AMQP_URL must be unset or equal to RABBITMQ_URL (they name the same broker)".into())
            }
            _ => {
                vars.insert("RABBITMQ_URL".into(), alias);
            }
        }
    }
    let url = vars.get("RABBITMQ_URL").map(|url| url.trim().to_owned());
    match url.as_deref() {
        Some("" | "none") => {
            // The services' own settings still need a well-formed URL; the bus replaces it.
            vars.remove("RABBITMQ_URL");
            EventsMode::InProcess
        }
        Some(url) => EventsMode::RabbitMq { shown_url: without_password(url) },
        None => EventsMode::RabbitMq { shown_url: without_password("amqp://guest:guest@127.0.0.1:5672/%2f") },
    }
}

fn cache_mode(vars: &mut HashMap<String, String>, problems: &mut Vec<String>) -> CacheMode {
    let mut env =
        Env::from_pairs([("MEMORY_CACHE_MAX_BYTES", vars.get("MEMORY_CACHE_MAX_BYTES").cloned().unwrap_or_default())]);
    let max_bytes = env.int_in("MEMORY_CACHE_MAX_BYTES", DEFAULT_MEMORY_CACHE_BYTES, 1 << 16, 1 << 40);
    collect(env.finish(), problems);
    let url = vars.get("REDIS_URL").map(|url| url.trim().to_owned());
    match url.as_deref() {
        Some("" | "none") => {
            vars.insert("REDIS_URL".into(), "none".into());
            CacheMode::InProcess { max_bytes }
        }
        Some(url) => CacheMode::Redis { shown_url: without_password(url) },
        None => CacheMode::Redis { shown_url: "redis://127.0.0.1:6379".into() },
    }
}

/// The shared variables, with `service`'s own (`<SERVICE>_<NAME>`) put over them.
fn service_env(vars: &HashMap<String, String>, service: &str, default_port: u16) -> Env {
    let mut own: HashMap<String, String> = vars.clone();
    if service != "router" {
        own.insert("HOST".into(), SUBGRAPH_HOST.into());
        own.insert("PORT".into(), default_port.to_string());
        own.insert("ADMIN_PORT".into(), "none".into());
        own.insert("SHUTDOWN_DELAY".into(), "0s".into());
    }
    let prefix = SERVICES.iter().find(|(name, _)| *name == service).map(|(_, prefix)| *prefix).unwrap_or("");
    for (name, value) in vars {
        if let Some(stripped) = name.strip_prefix(prefix).filter(|s| !s.is_empty()) {
            own.insert(stripped.to_owned(), value.clone());
        }
    }
    Env::from_pairs(own)
}

/// `scheme://user:secret@host` as `scheme://user:***@host`: for printing only.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "[unparsed URL]".into() };
    let (authority_end, path) = match rest.find('/') {
        Some(i) => (i, &rest[i..]),
        None => (rest.len(), ""),
    };
    let authority = &rest[..authority_end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => format!("{scheme}://{userinfo}@{host}{path}"),
        },
        None => url.to_owned(),
    }
}

/// How long the monolith waits for each dependency's first answer at start.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_put_every_service_on_its_port_on_loopback() {
        let settings = Settings::from_vars(vars(&[])).unwrap();
        assert_eq!(settings.router.http.port, 4000);
        assert_eq!(settings.auth.http.port, 4001);
        assert_eq!(settings.tasks.http.port, 4002);
        assert_eq!(settings.files.http.port, 4003);
        assert!(settings.router.http.host.is_loopback() && settings.files.http.host.is_loopback());
        assert_eq!(settings.router.http.admin, Some(([127, 0, 0, 1], 5000).into()), "the process's one admin listener");
        assert_eq!(
            (settings.auth.http.admin, settings.tasks.http.admin, settings.files.http.admin),
            (None, None, None)
        );
        assert_eq!(settings.auth.database.url.expose(), "postgres://postgres@127.0.0.1:5432/taskgraph");
        assert!(matches!(settings.cache, CacheMode::Redis { .. }));
        assert!(matches!(settings.events, EventsMode::RabbitMq { .. }));
    }

    #[test]
    fn one_random_router_secret_is_shared_by_all_four_and_only_the_router_delays_shutdown() {
        let settings = Settings::from_vars(vars(&[])).unwrap();
        let secret = settings.router.subgraphs.secret.clone();
        assert!(secret.secret().is_some_and(|s| s.expose().len() == 64), "generated");
        assert_eq!((&settings.auth.router_secret, &settings.tasks.router_secret), (&secret, &secret));
        assert_eq!(settings.files.router_secret, secret);
        let again = Settings::from_vars(vars(&[])).unwrap();
        assert_ne!(again.router.subgraphs.secret, secret, "a new one at every start");
        assert_eq!(settings.router.http.shutdown_delay, Duration::from_secs(5));
        assert_eq!(settings.tasks.http.shutdown_delay, Duration::ZERO);
    }

    #[test]
    fn a_service_prefix_sets_a_variable_for_that_service_alone() {
        let settings =
            Settings::from_vars(vars(&[("TASKS_USER_DELETED_QUEUE", "q.tasks"), ("FILES_PORT", "0")])).unwrap();
        assert_eq!(settings.tasks.consumer.queue, "q.tasks");
        assert_eq!(settings.files.consumer.queue, "files.user-deleted");
        assert_eq!(settings.files.http.port, 0);
        assert_eq!(settings.auth.http.port, 4001);
    }

    #[test]
    fn none_or_empty_urls_choose_the_in_process_cache_and_bus() {
        let settings = Settings::from_vars(vars(&[("REDIS_URL", "none"), ("AMQP_URL", "")])).unwrap();
        assert_eq!(settings.cache, CacheMode::InProcess { max_bytes: DEFAULT_MEMORY_CACHE_BYTES });
        assert_eq!(settings.events, EventsMode::InProcess);
        let settings = Settings::from_vars(vars(&[("REDIS_URL", ""), ("RABBITMQ_URL", "none")])).unwrap();
        assert!(matches!(settings.cache, CacheMode::InProcess { .. }));
        assert_eq!(settings.events, EventsMode::InProcess);
    }

    #[test]
    fn the_router_serves_the_built_app_unless_told_otherwise() {
        let explicit = Settings::from_vars(vars(&[("FRONTEND_DIR", "/srv/app")])).unwrap();
        assert_eq!(explicit.router.frontend_dir, Some(std::path::PathBuf::from("/srv/app")));
        let off = Settings::from_vars(vars(&[("FRONTEND_DIR", "none")])).unwrap();
        assert_eq!(off.router.frontend_dir, None);
        let default = Settings::from_vars(vars(&[])).unwrap();
        assert_eq!(default.router.frontend_dir, built_frontend().map(std::path::PathBuf::from));
    }

    #[test]
    fn problems_are_reported_once_each() {
        let err =
            Settings::from_vars(vars(&[("DATABASE_MAX_CONNECTIONS", "0"), ("USER_DELETED_QUEUE", "q")])).unwrap_err();
        let about_pool = err.0.iter().filter(|l| l.starts_with("DATABASE_MAX_CONNECTIONS")).count();
        assert_eq!(about_pool, 1, "{err}");
        assert!(err.0.iter().any(|l| l.starts_with("USER_DELETED_QUEUE must be unset")), "{err}");
    }

    #[test]
    fn passwords_never_reach_the_printed_urls() {
        assert_eq!(without_password("amqp://guest:guest@127.0.0.1:5672/%2f"), "amqp://guest:***@127.0.0.1:5672/%2f");
        assert_eq!(without_password("postgres://postgres@127.0.0.1:5432/db"), "postgres://postgres@127.0.0.1:5432/db");
        assert_eq!(without_password("redis://:s3cret@cache:6379"), "redis://:***@cache:6379");
        assert_eq!(without_password("not a url"), "[unparsed URL]");
    }
}
