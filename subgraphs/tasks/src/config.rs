//! The tasks service's settings, all from environment variables (see README).

use kit::config::{
    AmqpSettings, CacheSettings, DatabaseSettings, Env, HttpSettings, IdentitySettings, QueryLimits, SubgraphSecret,
    TelemetrySettings,
};
use kit::events::consumer::ConsumerSettings;

#[derive(Debug, Clone)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    pub cache: CacheSettings,
    pub telemetry: TelemetrySettings,
    pub identity: IdentitySettings,
    /// Where the auth service publishes its signing keys.
    pub jwks_url: String,
    /// The `user.deleted` consumer.
    pub consumer: ConsumerSettings,
    /// Limits on one GraphQL document (`MAX_QUERY_*`, as the router's).
    pub limits: QueryLimits,
    /// `SUBGRAPH_SHARED_SECRET`: GraphQL is answered only for the router.
    pub router_secret: SubgraphSecret,
}

pub const DEFAULT_PORT: u16 = 4002;

impl Settings {
    pub fn from_env(env: &mut Env) -> Self {
        let jwks_url = env.string("JWKS_URL", "http://127.0.0.1:4001/.well-known/jwks.json");
        if !(jwks_url.starts_with("http://") || jwks_url.starts_with("https://")) {
            env.invalid("JWKS_URL", "an http(s) URL", Some(&jwks_url));
        }
        Self {
            http: HttpSettings::from_env(env, DEFAULT_PORT),
            database: DatabaseSettings::from_env(env),
            amqp: AmqpSettings::from_env(env),
            cache: CacheSettings::from_env(env),
            telemetry: TelemetrySettings::from_env(env),
            identity: IdentitySettings::from_env(env),
            limits: QueryLimits::from_env(env),
            jwks_url,
            consumer: ConsumerSettings::user_deleted(env, crate::SERVICE, 16),
            router_secret: SubgraphSecret::from_env(env),
        }
    }
}
