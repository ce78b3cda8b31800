//! The auth service's settings, all from environment variables (see README).

use std::time::Duration;

use kit::config::{
    AmqpSettings, DatabaseSettings, Env, HttpSettings, QueryLimits, Secret, SubgraphSecret, TelemetrySettings,
};
use kit::events::Retention;

use crate::keys::{SigningKey, VerificationKey, public_keys_from_pem};
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
    /// `OUTBOX_RETENTION`: how long published outbox rows are kept.
    pub outbox_retention: Retention,
    /// `SUBGRAPH_SHARED_SECRET`: GraphQL is answered only for the router (the
    /// `/.well-known/` documents for anyone).
    pub router_secret: SubgraphSecret,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    /// PKCS#8 PEM of the Ed25519 signing key; `None` generates one at start.
    pub private_key_pem: Option<Secret>,
    /// Keys rotated out (`JWT_PREVIOUS_PUBLIC_KEYS`): published and trusted, never signing.
    pub previous_public_keys: Vec<VerificationKey>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// How long a rotated refresh token may be presented again for the same
    /// successor (`REFRESH_REUSE_GRACE`) before its reuse revokes the family.
    pub refresh_reuse_grace: Duration,
    /// How often auth's own verifier reads the revocations other replicas wrote.
    pub revocation_poll_interval: Duration,
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
            outbox_retention: kit::events::relay::retention_from_env(env),
            router_secret: SubgraphSecret::from_env(env),
        }
    }
}

impl JwtSettings {
    fn from_env(env: &mut Env) -> Self {
        let private_key_pem = inline_or_file(env, "JWT_PRIVATE_KEY").map(Secret::new);
        if let Some(pem) = &private_key_pem
            && SigningKey::from_pem(pem.expose()).is_err()
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
            previous_public_keys: previous_public_keys(env),
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
            refresh_reuse_grace: env.duration("REFRESH_REUSE_GRACE", "30s", Duration::ZERO, Duration::from_secs(300)),
            revocation_poll_interval: kit::config::revocation_poll_interval(env),
        }
    }
}

/// `<NAME>`, or the contents of the file `<NAME>_FILE` names (one of the two).
fn inline_or_file(env: &mut Env, name: &str) -> Option<String> {
    let file_var = format!("{name}_FILE");
    match (env.optional(name), env.optional(&file_var)) {
        (Some(_), Some(_)) => {
            env.invalid(&file_var, &format!("unset when {name} is set (use one of them)"), None);
            None
        }
        (Some(inline), None) => Some(inline),
        (None, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) => {
                env.invalid(&file_var, &format!("a readable PEM file ({e})"), Some(&path));
                None
            }
        },
        (None, None) => None,
    }
}

/// `JWT_PREVIOUS_PUBLIC_KEYS` (or `_FILE`): concatenated PEM public keys.
fn previous_public_keys(env: &mut Env) -> Vec<VerificationKey> {
    let Some(text) = inline_or_file(env, "JWT_PREVIOUS_PUBLIC_KEYS") else { return Vec::new() };
    public_keys_from_pem(&text).unwrap_or_else(|e| {
        let expects = format!("Ed25519 public keys in PEM, one after another (openssl pkey -pubout): {e}");
        env.invalid("JWT_PREVIOUS_PUBLIC_KEYS", &expects, None);
        Vec::new()
    })
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
    fn previous_keys_are_read_inline_or_from_a_file_and_refused_when_not_public_keys() {
        use ed25519_dalek::pkcs8::EncodePublicKey;
        let pem = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32])
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap();
        let mut env = Env::from_pairs([("JWT_PREVIOUS_PUBLIC_KEYS", format!("{pem}{pem}"))]);
        assert_eq!(previous_public_keys(&mut env).len(), 2);
        env.finish().unwrap();

        let path = std::env::temp_dir().join(format!("previous-{}.pem", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, &pem).unwrap();
        let mut env = Env::from_pairs([("JWT_PREVIOUS_PUBLIC_KEYS_FILE", path.display().to_string())]);
        assert_eq!(previous_public_keys(&mut env).len(), 1);
        env.finish().unwrap();
        std::fs::remove_file(&path).unwrap();

        let mut env = Env::from_pairs([("JWT_PREVIOUS_PUBLIC_KEYS", "-----BEGIN PRIVATE KEY-----")]);
        assert!(previous_public_keys(&mut env).is_empty());
        let err = env.finish().unwrap_err().to_string();
        assert!(err.starts_with("JWT_PREVIOUS_PUBLIC_KEYS must be Ed25519 public keys in PEM"), "{err}");
    }

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
