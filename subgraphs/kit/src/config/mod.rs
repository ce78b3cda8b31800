//! The settings only subgraphs read (database, broker, cache), beside
//! everything of `platform::config` every service reads.

use std::time::Duration;

pub use platform::config::*;

/// The service's Postgres database.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: Secret,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl DatabaseSettings {
    pub fn from_env(env: &mut Env) -> Self {
        let url = env.secret_or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/taskgraph");
        if !(url.expose().starts_with("postgres://") || url.expose().starts_with("postgresql://")) {
            // The value may hold a password: never echo it.
            env.invalid("DATABASE_URL", "a postgres:// URL", None);
        }
        Self {
            url,
            max_connections: env.int_in("DATABASE_MAX_CONNECTIONS", 10, 1, 1000),
            acquire_timeout: env.duration(
                "DATABASE_ACQUIRE_TIMEOUT",
                "5s",
                Duration::from_millis(100),
                Duration::from_secs(120),
            ),
        }
    }
}

/// The RabbitMQ broker and the exchange events travel on.
#[derive(Debug, Clone)]
pub struct AmqpSettings {
    pub url: Secret,
    pub exchange: String,
    /// How often the outbox relay looks for rows when no notification woke it.
    pub poll_interval: Duration,
    /// Longest pause between reconnection attempts.
    pub max_backoff: Duration,
}

impl AmqpSettings {
    pub fn from_env(env: &mut Env) -> Self {
        let url = env.secret_or("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2f");
        if !(url.expose().starts_with("amqp://") || url.expose().starts_with("amqps://")) {
            env.invalid("RABBITMQ_URL", "an amqp:// URL", None);
        }
        let exchange = env.string("EVENTS_EXCHANGE", "taskgraph.events");
        if exchange.len() > 200 || !exchange.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            env.invalid("EVENTS_EXCHANGE", "an exchange name of letters, digits, '.', '_' or '-'", Some(&exchange));
        }
        Self {
            url,
            exchange,
            poll_interval: env.duration(
                "OUTBOX_POLL_INTERVAL",
                "5s",
                Duration::from_millis(10),
                Duration::from_secs(3600),
            ),
            max_backoff: env.duration("AMQP_MAX_BACKOFF", "30s", Duration::from_millis(10), Duration::from_secs(3600)),
        }
    }
}

/// Where cached resolver results live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheBackend {
    /// Redis at `REDIS_URL`: shared by every replica.
    Redis,
    /// Process memory, at most `max_bytes`. Never chosen from the environment of a
    /// standalone service: replicas would miss each other's invalidations. Only a
    /// process that serves every read and write (the monolith) sets it.
    Memory { max_bytes: usize },
    /// `REDIS_URL=none`: nothing is cached, every read goes to the database.
    Off,
}

/// The cache in front of resolver results.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub backend: CacheBackend,
    pub url: Secret,
    /// How long a cached result lives.
    pub ttl: Duration,
    /// Longest wait for Redis before a request goes straight to Postgres.
    pub timeout: Duration,
    /// Put before every key, so deployments (or tests) can share one Redis.
    pub key_prefix: String,
    /// Bound of each replica's own copies of entries read from Redis (0: none).
    pub local_max_bytes: usize,
    /// `CACHE_MAX_ENTRY_BYTES`: a larger value is answered but never cached,
    /// in any tier.
    pub max_entry_bytes: usize,
}

impl CacheSettings {
    pub fn from_env(env: &mut Env) -> Self {
        let url = env.secret_or("REDIS_URL", "redis://127.0.0.1:6379");
        let backend = if url.expose().trim() == "none" { CacheBackend::Off } else { CacheBackend::Redis };
        if backend == CacheBackend::Redis
            && !(url.expose().starts_with("redis://") || url.expose().starts_with("rediss://"))
        {
            env.invalid("REDIS_URL", "a redis:// URL, or none", None);
        }
        Self {
            backend,
            url,
            ttl: env.duration("CACHE_TTL", "60s", Duration::from_secs(1), Duration::from_secs(24 * 3600)),
            timeout: env.duration("CACHE_TIMEOUT", "100ms", Duration::from_millis(1), Duration::from_secs(10)),
            key_prefix: env.string("CACHE_KEY_PREFIX", ""),
            local_max_bytes: env.int_in("CACHE_LOCAL_MAX_BYTES", 32 << 20, 0, 1 << 40),
            // Redis refuses strings over 512 MiB.
            max_entry_bytes: env.int_in("CACHE_MAX_ENTRY_BYTES", 1 << 20, 1, 512 << 20),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_and_urls_are_not_echoed() {
        let mut env = Env::from_pairs([("DATABASE_URL", "mysql://root:hunter2@db/x")]);
        let db = DatabaseSettings::from_env(&mut env);
        assert_eq!(format!("{:?}", db.url), "[redacted]");
        let err = env.finish().unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("DATABASE_URL"), "{err}");
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        let mut env = Env::from_pairs([("DATABASE_MAX_CONNECTIONS", "0")]);
        let _ = DatabaseSettings::from_env(&mut env);
        let err = env.finish().unwrap_err().to_string();
        assert!(err.contains("DATABASE_MAX_CONNECTIONS must be a whole number from 1 to 1000"), "{err}");
    }

    #[test]
    fn secret_urls_come_from_their_file_when_named_by_name_file() {
        let dir = std::env::temp_dir().join(format!("kit-secret-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("database_url");
        std::fs::write(&path, "postgres://app:s3cret@db:5432/taskgraph\n").unwrap();
        let mut env = Env::from_pairs([("DATABASE_URL_FILE", path.display().to_string())]);

        let db = DatabaseSettings::from_env(&mut env);

        assert!(env.finish().is_ok());
        assert_eq!(db.url.expose(), "postgres://app:s3cret@db:5432/taskgraph", "the final newline trimmed");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_secret_set_twice_or_an_unreadable_file_is_refused_without_echoing_it() {
        let mut both = Env::from_pairs([("REDIS_URL", "redis://:pw@cache"), ("REDIS_URL_FILE", "/run/secrets/redis")]);
        let _ = both.secret_or("REDIS_URL", "redis://127.0.0.1:6379");
        let mut missing = Env::from_pairs([("RABBITMQ_URL_FILE", "/nonexistent/rabbitmq_url")]);
        let _ = AmqpSettings::from_env(&mut missing);

        let both = both.finish().unwrap_err().to_string();
        let missing = missing.finish().unwrap_err().to_string();
        assert!(both.contains("REDIS_URL_FILE must be unset when REDIS_URL is set") && !both.contains("pw"), "{both}");
        assert!(missing.contains("RABBITMQ_URL_FILE must be a readable file"), "{missing}");
    }
}
