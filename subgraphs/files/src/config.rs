//! The files service's settings, all from environment variables (see README).

use std::path::PathBuf;
use std::time::Duration;

use kit::config::{
    AmqpSettings, DatabaseSettings, Env, HttpSettings, IdentitySettings, QueryLimits, Secret, SubgraphSecret,
    TelemetrySettings,
};
use kit::events::consumer::ConsumerSettings;

#[derive(Debug, Clone)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    pub telemetry: TelemetrySettings,
    pub identity: IdentitySettings,
    /// Where the auth service publishes its public keys.
    pub jwks_url: String,
    /// The `user.deleted` consumer (its queue's dead letters go to `<queue>.dead`).
    pub consumer: ConsumerSettings,
    pub storage: StorageSettings,
    pub uploads: UploadSettings,
    pub downloads: DownloadSettings,
    /// Limits on one GraphQL document (`MAX_QUERY_*`, as the router's).
    pub limits: QueryLimits,
    /// `SUBGRAPH_SHARED_SECRET`: GraphQL and downloads are answered only for the router.
    pub router_secret: SubgraphSecret,
}

/// Where blobs live.
#[derive(Debug, Clone)]
pub enum StorageSettings {
    /// A directory on the local filesystem (created if missing).
    Local { dir: PathBuf },
    /// An S3-compatible bucket, `s3://bucket/prefix`, with `AWS_*` options
    /// (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, ...).
    S3 { url: String, options: Vec<(String, Secret)> },
}

#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// Largest file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Most files in one request.
    pub max_files: usize,
    /// Sniffed content types accepted; `type/*` accepts a whole top-level type.
    pub allowed_types: Vec<String>,
    /// Bytes each user may store in all (`FILES_QUOTA_BYTES`).
    pub quota_bytes: u64,
    /// Blobs without a row older than this are removed by the sweep.
    pub orphan_grace: Duration,
    /// How often the sweep and the retry of pending blob deletions run.
    pub sweep_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct DownloadSettings {
    /// HMAC key of download URLs; `None` generates one at start.
    pub url_secret: Option<Secret>,
    /// Lifetime of a download URL.
    pub url_ttl: Duration,
    /// Put before `/files/{id}/content` in download URLs (empty: a path on the API's origin).
    pub public_url: String,
}

pub const DEFAULT_PORT: u16 = 4003;
/// 1 GiB per user.
pub const DEFAULT_QUOTA_BYTES: u64 = 1 << 30;
pub const DEFAULT_JWKS_URL: &str = "http://127.0.0.1:4001/.well-known/jwks.json";
/// The default allow-list: images, PDF, plain text, CSV, JSON, zip and office documents.
pub const DEFAULT_ALLOWED_TYPES: &str = "image/png,image/jpeg,image/gif,image/webp,image/bmp,image/tiff,image/avif,\
application/pdf,text/plain,text/csv,application/json,application/zip,\
application/msword,application/vnd.ms-excel,application/vnd.ms-powerpoint,\
application/vnd.openxmlformats-officedocument.wordprocessingml.document,\
application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,\
application/vnd.openxmlformats-officedocument.presentationml.presentation,\
application/vnd.oasis.opendocument.text,application/vnd.oasis.opendocument.spreadsheet,\
application/vnd.oasis.opendocument.presentation,application/rtf";

impl Settings {
    pub fn from_env(env: &mut Env) -> Self {
        let uploads = UploadSettings::from_env(env);
        let mut http = HttpSettings::from_env(env, DEFAULT_PORT);
        // BODY_LIMIT_BYTES bounds what is not a file (the operations and the map);
        // a request may carry that plus its files.
        http.body_limit =
            http.body_limit.saturating_add(uploads.max_files.saturating_mul(uploads.max_file_bytes as usize));
        Self {
            http,
            database: DatabaseSettings::from_env(env),
            amqp: AmqpSettings::from_env(env),
            telemetry: TelemetrySettings::from_env(env),
            identity: IdentitySettings::from_env(env),
            limits: QueryLimits::from_env(env),
            jwks_url: env.string("JWKS_URL", DEFAULT_JWKS_URL),
            consumer: ConsumerSettings::user_deleted(env, crate::SERVICE, 8),
            storage: StorageSettings::from_env(env),
            uploads,
            downloads: DownloadSettings::from_env(env),
            router_secret: SubgraphSecret::from_env(env),
        }
    }
}

impl StorageSettings {
    fn from_env(env: &mut Env) -> Self {
        match env.optional("STORAGE_URL") {
            Some(url) if url.starts_with("s3://") && url.len() > "s3://".len() => {
                let options = env.with_prefix("AWS_").into_iter().map(|(k, v)| (k, Secret::new(v))).collect();
                StorageSettings::S3 { url, options }
            }
            Some(url) => {
                env.invalid("STORAGE_URL", "an s3://bucket[/prefix] URL (or unset for STORAGE_DIR)", Some(&url));
                StorageSettings::Local { dir: PathBuf::from(env.string("STORAGE_DIR", "data/files")) }
            }
            None => StorageSettings::Local { dir: PathBuf::from(env.string("STORAGE_DIR", "data/files")) },
        }
    }
}

impl UploadSettings {
    fn from_env(env: &mut Env) -> Self {
        let raw = env.string("UPLOAD_ALLOWED_TYPES", DEFAULT_ALLOWED_TYPES);
        let allowed_types: Vec<String> =
            raw.split(',').map(|t| t.trim().to_ascii_lowercase()).filter(|t| !t.is_empty()).collect();
        if allowed_types.is_empty()
            || allowed_types.iter().any(|t| t.split_once('/').is_none_or(|(a, b)| a.is_empty() || b.is_empty()))
        {
            env.invalid(
                "UPLOAD_ALLOWED_TYPES",
                "a comma-separated list of media types such as image/*,application/pdf",
                Some(&raw),
            );
        }
        Self {
            max_file_bytes: env.int_in("UPLOAD_MAX_FILE_BYTES", 10 << 20, 0, i32::MAX as u64),
            max_files: env.int_in("UPLOAD_MAX_FILES", 10, 1, 1000),
            allowed_types,
            quota_bytes: env.int_in("FILES_QUOTA_BYTES", DEFAULT_QUOTA_BYTES, 0, i64::MAX as u64),
            orphan_grace: env.duration(
                "ORPHAN_GRACE_PERIOD",
                "1h",
                Duration::from_secs(60),
                Duration::from_secs(30 * 24 * 3600),
            ),
            sweep_interval: env.duration(
                "ORPHAN_SWEEP_INTERVAL",
                "15m",
                Duration::from_secs(1),
                Duration::from_secs(24 * 3600),
            ),
        }
    }
}

impl DownloadSettings {
    fn from_env(env: &mut Env) -> Self {
        let inline = env.secret("DOWNLOAD_URL_SECRET");
        let file = env.optional("DOWNLOAD_URL_SECRET_FILE");
        let url_secret = match (inline, file) {
            (Some(_), Some(_)) => {
                env.invalid(
                    "DOWNLOAD_URL_SECRET_FILE",
                    "unset when DOWNLOAD_URL_SECRET is set (use one of them)",
                    None,
                );
                None
            }
            (Some(secret), None) => Some(secret),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(secret) => Some(Secret::new(secret.trim())),
                Err(e) => {
                    env.invalid("DOWNLOAD_URL_SECRET_FILE", &format!("a readable file ({e})"), Some(&path));
                    None
                }
            },
            (None, None) => None,
        };
        if url_secret.as_ref().is_some_and(|s| s.expose().len() < 32) {
            env.invalid("DOWNLOAD_URL_SECRET", "at least 32 characters", None);
        }
        let public_url = env.string("PUBLIC_URL", "").trim_end_matches('/').to_owned();
        if !(public_url.is_empty() || public_url.starts_with("http://") || public_url.starts_with("https://")) {
            env.invalid(
                "PUBLIC_URL",
                "an http(s):// origin, or unset for paths on the API's origin",
                Some(&public_url),
            );
        }
        Self {
            url_secret,
            url_ttl: env.duration("DOWNLOAD_URL_TTL", "5m", Duration::from_secs(1), Duration::from_secs(7 * 24 * 3600)),
            public_url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_the_body_limit_that_follows_from_the_upload_limits() {
        let mut env = Env::from_pairs([
            ("UPLOAD_MAX_FILES", "2"),
            ("UPLOAD_MAX_FILE_BYTES", "1000"),
            ("SUBGRAPH_SHARED_SECRET", "disabled"),
        ]);
        let settings = Settings::from_env(&mut env);
        env.finish().unwrap();
        assert_eq!(settings.http.port, 4003);
        assert_eq!(settings.http.body_limit, (1 << 20) + 2000);
        assert!(matches!(settings.storage, StorageSettings::Local { .. }));
        assert_eq!(settings.downloads.url_ttl, Duration::from_secs(300));
        assert!(settings.uploads.allowed_types.contains(&"application/pdf".to_owned()));
        assert_eq!(settings.uploads.quota_bytes, 1 << 30);
        assert_eq!((settings.consumer.queue.as_str(), settings.consumer.prefetch), ("files.user-deleted", 8));
        assert_eq!(settings.consumer.max_backoff, Duration::from_secs(30));
        assert_eq!(settings.consumer.processed_retention.keep, Duration::from_secs(30 * 24 * 3600));
    }

    #[test]
    fn the_consumer_is_configured_like_every_consumer() {
        let mut env = Env::from_pairs([
            ("USER_DELETED_QUEUE", "q.files"),
            ("EVENTS_PREFETCH", "32"),
            ("EVENTS_MAX_BACKOFF", "5s"),
            ("PROCESSED_EVENTS_RETENTION", "90d"),
            ("SUBGRAPH_SHARED_SECRET", "disabled"),
        ]);
        let settings = Settings::from_env(&mut env);
        env.finish().unwrap();
        assert_eq!((settings.consumer.queue.as_str(), settings.consumer.prefetch), ("q.files", 32));
        assert_eq!(settings.consumer.max_backoff, Duration::from_secs(5));
        assert_eq!(settings.consumer.processed_retention.keep, Duration::from_secs(90 * 24 * 3600));
    }

    #[test]
    fn bad_values_are_named() {
        let mut env = Env::from_pairs([
            ("STORAGE_URL", "ftp://x"),
            ("DOWNLOAD_URL_SECRET", "short"),
            ("UPLOAD_ALLOWED_TYPES", "pdf"),
            ("FILES_QUOTA_BYTES", "-1"),
        ]);
        let _ = Settings::from_env(&mut env);
        let err = env.finish().unwrap_err().to_string();
        for name in ["STORAGE_URL", "DOWNLOAD_URL_SECRET", "UPLOAD_ALLOWED_TYPES", "FILES_QUOTA_BYTES"] {
            assert!(err.contains(name), "{err}");
        }
        assert!(!err.contains("short"), "secrets are not echoed: {err}");
    }

    #[test]
    fn s3_takes_the_aws_options() {
        let mut env = Env::from_pairs([("STORAGE_URL", "s3://bucket/files"), ("AWS_REGION", "eu-west-1")]);
        let storage = StorageSettings::from_env(&mut env);
        env.finish().unwrap();
        let StorageSettings::S3 { url, options } = storage else { panic!("s3 expected") };
        assert_eq!(url, "s3://bucket/files");
        assert_eq!(options[0].0, "REGION");
    }
}
