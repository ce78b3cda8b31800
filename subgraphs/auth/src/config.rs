//! The auth service's settings, all from environment variables (see README).

use std::time::Duration;

use kit::config::{AmqpSettings, DatabaseSettings, Env, HttpSettings, QueryLimits, Secret, TelemetrySettings};

use crate::passwords::FailureLimit;

#[derive(Debug, Clone)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    pub telemetry: TelemetrySettings,
    pub jwt: JwtSettings,
    pub passwords: PasswordSettings,
    /// Limits on one GraphQL document (`MAX_QUERY_*`, as the router's).
    pub limits: QueryLimits,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    /// PKCS#8 PEM of the Ed25519 signing key; `None` generates one at start.
    pub private_key_pem: Option<Secret>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct PasswordSettings {
    pub bcrypt_cost: u32,
    /// bcrypt hashes computed at once; more wait their turn without blocking other requests.
    pub max_concurrent_hashes: usize,
    /// Hashes queued or running in all; beyond it, requests are refused at once.
    pub max_queued_hashes: usize,
    /// Wrong passwords per account and window (`PASSWORD_FAILURE_LIMIT`).
    pub failure_limit: FailureLimit,
}

pub const DEFAULT_PORT: u16 = 4001;

impl Settings {
    pub fn from_env(env: &mut Env) -> Self {
        Self {
            http: HttpSettings::from_env(env, DEFAULT_PORT),
            database: DatabaseSettings::from_env(env),
            amqp: AmqpSettings::from_env(env),
            telemetry: TelemetrySettings::from_env(env),
            jwt: JwtSettings::from_env(env),
            passwords: PasswordSettings::from_env(env),
            limits: QueryLimits::from_env(env),
        }
    }
}

impl JwtSettings {
    fn from_env(env: &mut Env) -> Self {
        let inline = env.secret("JWT_PRIVATE_KEY");
        let file = env.optional("JWT_PRIVATE_KEY_FILE");
        let private_key_pem = match (inline, file) {
            (Some(_), Some(_)) => {
                env.invalid("JWT_PRIVATE_KEY_FILE", "unset when JWT_PRIVATE_KEY is set (use one of them)", None);
                None
            }
            (Some(pem), None) => Some(pem),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(pem) => Some(Secret::new(pem)),
                Err(e) => {
                    env.invalid("JWT_PRIVATE_KEY_FILE", &format!("a readable PEM file ({e})"), Some(&path));
                    None
                }
            },
            (None, None) => None,
        };
        if let Some(pem) = &private_key_pem
            && crate::tokens::SigningKey::from_pem(pem.expose()).is_err()
        {
            env.invalid(
                "JWT_PRIVATE_KEY",
                "an Ed25519 private key in PKCS#8 PEM (openssl genpkey -algorithm ed25519)",
                None,
            );
        }
        Self {
            issuer: env.string("JWT_ISSUER", "taskgraph-auth"),
            audience: env.string("JWT_AUDIENCE", "taskgraph"),
            private_key_pem,
            access_ttl: env.duration(
                "ACCESS_TOKEN_TTL",
                "15m",
                Duration::from_secs(10),
                Duration::from_secs(24 * 3600),
            ),
            refresh_ttl: env.duration(
                "REFRESH_TOKEN_TTL",
                "7d",
                Duration::from_secs(60),
                Duration::from_secs(365 * 24 * 3600),
            ),
        }
    }
}

impl PasswordSettings {
    fn from_env(env: &mut Env) -> Self {
        // Hashing threads run at a lower priority and leave one core to the request
        // path: measured on 2 cores, one hash at a time keeps `me` under 5 ms p99
        // during a login storm, two at a time do not (wake-up latency behind them).
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let default_concurrency = cores.saturating_sub(1).max(1);
        Self {
            bcrypt_cost: env.int_in("BCRYPT_COST", 12, 4, 31),
            max_concurrent_hashes: env.int_in("BCRYPT_MAX_CONCURRENCY", default_concurrency, 1, 1024),
            max_queued_hashes: env.int_in("BCRYPT_MAX_QUEUE", cores * 8, 1, 1_000_000),
            failure_limit: failure_limit(env),
        }
    }
}

/// `PASSWORD_FAILURE_LIMIT`: `<count>/<window>`, e.g. `5/15m`, as the router's rates are written.
fn failure_limit(env: &mut Env) -> FailureLimit {
    const NAME: &str = "PASSWORD_FAILURE_LIMIT";
    const DEFAULT: FailureLimit = FailureLimit { failures: 5, window: Duration::from_secs(15 * 60) };
    let Some(raw) = env.optional(NAME) else { return DEFAULT };
    let parsed = raw.split_once('/').and_then(|(count, window)| {
        let failures = count.trim().parse().ok().filter(|n| (1..=1000).contains(n))?;
        let window = humantime::parse_duration(window.trim()).ok()?;
        (Duration::from_secs(1)..=Duration::from_secs(24 * 3600))
            .contains(&window)
            .then_some(FailureLimit { failures, window })
    });
    parsed.unwrap_or_else(|| {
        env.invalid(NAME, "<count>/<window> such as 5/15m (count 1 to 1000, window 1s to 24h)", Some(&raw));
        DEFAULT
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_failure_limit_reads_a_count_and_a_window() {
        let mut env = Env::from_pairs([("PASSWORD_FAILURE_LIMIT", "3/2s")]);
        let limit = failure_limit(&mut env);
        env.finish().unwrap();
        assert_eq!(limit, FailureLimit { failures: 3, window: Duration::from_secs(2) });
        for wrong in ["3", "0/15m", "5/forever", "5/2d"] {
            let mut env = Env::from_pairs([("PASSWORD_FAILURE_LIMIT", wrong)]);
            let _ = failure_limit(&mut env);
            let err = env.finish().unwrap_err().to_string();
            assert!(err.starts_with("PASSWORD_FAILURE_LIMIT must be <count>/<window>"), "{wrong}: {err}");
        }
    }
}
