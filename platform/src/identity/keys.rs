//! The auth service's public keys, fetched from its JWKS: refreshed every
//! `JWKS_REFRESH_INTERVAL` (so a key dropped from the set stops counting) and
//! when a token names a key we do not know (at a bounded rate).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};

/// A token naming an unknown key triggers at most one JWKS fetch per this interval,
/// so garbage tokens cannot turn us into a load generator against auth.
const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(10);
/// After a failed fetch, requests retry at most this often.
const FAILED_REFETCH: Duration = Duration::from_secs(1);

pub(super) struct JwksSource {
    url: String,
    client: reqwest::Client,
    refresh_interval: Duration,
    fetches: tokio::sync::Mutex<Fetches>,
    /// The last fetch succeeded: until then (and after a failure) an unknown
    /// `kid` means "cannot tell", not "not ours".
    healthy: AtomicBool,
}

#[derive(Default)]
struct Fetches {
    last_attempt: Option<Instant>,
    last_success: Option<Instant>,
}

/// Why a fetch was made, which decides whether it is due.
#[derive(Clone, Copy)]
pub(super) enum Reason {
    /// A token names a key we do not hold.
    UnknownKid,
    /// The periodic refresh.
    Schedule,
}

impl JwksSource {
    pub(super) fn new(url: String, client: reqwest::Client, refresh_interval: Duration) -> Self {
        Self {
            url,
            client,
            refresh_interval,
            fetches: tokio::sync::Mutex::new(Fetches::default()),
            healthy: AtomicBool::new(false),
        }
    }

    pub(super) fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// The keys, fetched now if a fetch is due for `reason`; `None` when none
    /// was due or it failed (the keys held so far stay).
    pub(super) async fn fetch_if_due(&self, reason: Reason) -> Option<HashMap<String, DecodingKey>> {
        let mut fetches = self.fetches.lock().await;
        let healthy = self.healthy();
        let due = match (reason, healthy) {
            (_, false) => fetches.last_attempt.is_none_or(|at| at.elapsed() >= FAILED_REFETCH),
            (Reason::UnknownKid, true) => fetches.last_attempt.is_none_or(|at| at.elapsed() >= UNKNOWN_KID_REFETCH),
            (Reason::Schedule, true) => fetches.last_success.is_none_or(|at| at.elapsed() >= self.refresh_interval),
        };
        if !due {
            return None;
        }
        fetches.last_attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                fetches.last_success = fetches.last_attempt;
                if !self.healthy.swap(true, Ordering::AcqRel) {
                    tracing::info!(keys = keys.len(), "loaded JWKS");
                }
                Some(keys)
            }
            Err(e) => {
                if self.healthy.swap(false, Ordering::AcqRel) || fetches.last_success.is_none() {
                    tracing::warn!(error = %format!("{e:#}"), url = %self.url, "could not fetch JWKS; keeping the keys held");
                }
                metrics::counter!("identity_refresh_failures_total", "source" => "jwks").increment(1);
                None
            }
        }
    }

    /// A JWKS without a usable key is as good as none: garbage, not a key removal.
    async fn fetch(&self) -> anyhow::Result<HashMap<String, DecodingKey>> {
        let set: JwkSet = self.client.get(&self.url).send().await?.error_for_status()?.json().await?;
        let keys = decoding_keys(&set);
        anyhow::ensure!(!keys.is_empty(), "the JWKS holds no Ed25519 key with a kid");
        Ok(keys)
    }
}

/// The Ed25519 keys of a JWKS that carry a `kid`; others are ignored.
fn decoding_keys(set: &JwkSet) -> HashMap<String, DecodingKey> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            match &jwk.algorithm {
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                    DecodingKey::from_jwk(jwk).ok().map(|k| (kid, k))
                }
                _ => None,
            }
        })
        .collect()
}
