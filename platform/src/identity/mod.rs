//! Who is calling: verification of EdDSA access tokens.
//!
//! Only a valid access token makes a request authenticated: no other header,
//! claim or token type does. Keys come from the auth service's JWKS ([`keys`]:
//! refreshed periodically and on an unknown `kid`) or, in the auth service
//! itself, straight from its keys. A valid signature is not enough: a token
//! issued before its user's sessions were ended is refused too
//! ([`revocations`]). What cannot be checked because auth cannot be reached is
//! [`TokenError::Unavailable`], a retryable refusal, never "invalid token".

mod keys;
pub mod revocations;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lru::LruCache;
pub use revocations::{HttpRevocations, Revocation, RevocationPage, RevocationSource};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::IdentitySettings;
use keys::{JwksSource, Reason};
use revocations::SessionVersions;

/// The authenticated user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: Uuid,
    /// The token's `jti`.
    pub token_id: String,
    /// The token's `iat` (seconds since the epoch).
    pub issued_at: i64,
    /// The token's `sv`: the user's session version when it was issued.
    pub session_version: i64,
}

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// Always `access`: refresh tokens are opaque and never JWTs, but the claim
    /// keeps any other JWT our issuer might sign from passing as an access token.
    pub typ: String,
    pub kid: String,
    /// The user's session version at issue; tokens issued before versions
    /// existed have none and count as version 0.
    #[serde(default)]
    pub sv: i64,
}

pub const ACCESS_TOKEN_TYPE: &str = "access";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token signed with an unknown key")]
    UnknownKey,
    #[error("token expired")]
    Expired,
    #[error("token is not an access token")]
    WrongType,
    #[error("invalid token")]
    Invalid,
    #[error("the user's sessions were ended after this token was issued")]
    Revoked,
    /// Its key or the session revocations cannot be fetched from auth now: retry.
    #[error("the token cannot be checked now")]
    Unavailable,
}

/// Verifies access tokens. Cheap to clone.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// Tokens whose signature and claims were checked, with their expiry: a
    /// client's next requests skip the signature check (Ed25519 verification
    /// is most of the cost of a cached read). Revocation is checked on every hit.
    verified: Mutex<LruCache<String, (Viewer, i64)>>,
    jwks: Option<JwksSource>,
    sessions: SessionVersions,
    poll_interval: Duration,
    validation: Validation,
}

/// Tolerated clock skew between services.
const LEEWAY_SECS: u64 = 5;
/// Verified tokens remembered (about 0.5 KB each).
const VERIFIED_TOKENS: usize = 10_000;
/// Longer headers are refused before any parsing.
const MAX_TOKEN_LEN: usize = 4096;
/// Longest wait for auth's JWKS or revocations (a request may be waiting on it).
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

impl TokenVerifier {
    fn with_sources(
        identity: (&str, &str),
        keys: HashMap<String, DecodingKey>,
        jwks: Option<JwksSource>,
        revocations: Box<dyn RevocationSource>,
        poll_interval: Duration,
    ) -> Self {
        let (issuer, audience) = identity;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = LEEWAY_SECS;
        let verified = Mutex::new(LruCache::new(VERIFIED_TOKENS.try_into().expect("non-zero")));
        let sessions = SessionVersions::new(revocations);
        Self { inner: Arc::new(Inner { keys: RwLock::new(keys), verified, jwks, sessions, poll_interval, validation }) }
    }

    /// A verifier over known keys, reading revocations from `revocations`
    /// every `poll_interval` (the auth service verifying its own tokens).
    pub fn with_keys(
        issuer: &str,
        audience: &str,
        keys: impl IntoIterator<Item = (String, DecodingKey)>,
        revocations: impl RevocationSource,
        poll_interval: Duration,
    ) -> Self {
        let keys = keys.into_iter().collect();
        Self::with_sources((issuer, audience), keys, None, Box::new(revocations), poll_interval)
    }

    /// A verifier of the auth service's tokens from elsewhere: keys from its
    /// JWKS at `jwks_url`, revocations from `session-revocations` beside it.
    pub fn remote(settings: &IdentitySettings, jwks_url: &str) -> Self {
        let client =
            reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().expect("a plain HTTP client always builds");
        let revocations_url = reqwest::Url::parse(jwks_url)
            .and_then(|url| url.join("session-revocations"))
            .map_or_else(|_| jwks_url.to_owned(), String::from);
        let revocations = HttpRevocations { url: revocations_url, client: client.clone() };
        let jwks = JwksSource::new(jwks_url.to_owned(), client, settings.jwks_refresh_interval);
        Self::with_sources(
            (&settings.issuer, &settings.audience),
            HashMap::new(),
            Some(jwks),
            Box::new(revocations),
            settings.revocation_poll_interval,
        )
    }

    /// Keeps revocations (every poll interval) and keys (every refresh
    /// interval, and every poll while they cannot be fetched) fresh until `cancel`.
    pub async fn keep_fresh(self, cancel: CancellationToken) {
        loop {
            self.inner.sessions.poll().await;
            self.refresh_keys(Reason::Schedule).await;
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.inner.poll_interval) => {}
            }
        }
    }

    /// Seconds after which a request refused as [`TokenError::Unavailable`] may retry.
    pub fn retry_after_secs(&self) -> u64 {
        self.inner.poll_interval.as_secs_f64().ceil().max(1.0) as u64
    }

    /// Takes in a revocation at once (auth, after committing it), ahead of the next poll.
    pub fn note_revocation(&self, revocation: Revocation) {
        self.inner.sessions.note(revocation);
    }

    /// The viewer named by an `Authorization: Bearer` header, if it holds a valid
    /// access token. No header is anonymous; another scheme or a bad token is an error.
    pub async fn viewer_from_headers(&self, headers: &HeaderMap) -> Result<Option<Viewer>, TokenError> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Ok(None);
        };
        let token = bearer_token(value.as_bytes()).ok_or(TokenError::Malformed)?;
        self.verify(token).await.map(Some)
    }

    pub async fn verify(&self, token: &str) -> Result<Viewer, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let viewer = match self.remembered(token) {
            Some(viewer) => viewer,
            // Boxed: the first sight of a token (possibly a key set fetch) is rare,
            // and its future, inlined, would size every request's to fit.
            None => Box::pin(self.check_signature(token)).await?,
        };
        self.inner.sessions.check(&viewer).await?;
        Ok(viewer)
    }

    fn remembered(&self, token: &str) -> Option<Viewer> {
        let now = chrono::Utc::now().timestamp();
        let mut verified = self.inner.verified.lock().expect("token cache lock");
        let (viewer, expires) = verified.get(token)?;
        (now < *expires).then(|| viewer.clone())
    }

    /// Checks the signature and claims, and remembers the token if they hold.
    async fn check_signature(&self, token: &str) -> Result<Viewer, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let key = self.key_for(&kid).await?;
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, &key, &self.inner.validation).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        let claims = data.claims;
        if claims.typ != ACCESS_TOKEN_TYPE {
            return Err(TokenError::WrongType);
        }
        let user_id = Uuid::parse_str(&claims.sub).map_err(|_| TokenError::Invalid)?;
        let viewer = Viewer { user_id, token_id: claims.jti, issued_at: claims.iat, session_version: claims.sv };
        self.inner.verified.lock().expect("token cache lock").put(token.to_owned(), (viewer.clone(), claims.exp));
        Ok(viewer)
    }

    /// The key named `kid`, fetching the JWKS again if we do not hold it. A key
    /// still unknown after a successful fetch is not ours; one we could not
    /// fetch at all cannot be judged.
    async fn key_for(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        if let Some(key) = self.key(kid) {
            return Ok(key);
        }
        let Some(jwks) = &self.inner.jwks else { return Err(TokenError::UnknownKey) };
        self.refresh_keys(Reason::UnknownKid).await;
        match self.key(kid) {
            Some(key) => Ok(key),
            None if jwks.healthy() => Err(TokenError::UnknownKey),
            None => Err(TokenError::Unavailable),
        }
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.inner.keys.read().expect("key lock is never poisoned").get(kid).cloned()
    }

    /// Replaces the keys with the JWKS's, if a fetch is due for `reason`. Tokens
    /// remembered under a key that left the set are forgotten with it.
    async fn refresh_keys(&self, reason: Reason) {
        let Some(jwks) = &self.inner.jwks else { return };
        let Some(fetched) = jwks.fetch_if_due(reason).await else { return };
        let mut keys = self.inner.keys.write().expect("key lock is never poisoned");
        let removed = keys.keys().any(|kid| !fetched.contains_key(kid));
        *keys = fetched;
        drop(keys);
        if removed {
            tracing::info!("a key left the JWKS: tokens it signed are no longer trusted");
            self.inner.verified.lock().expect("token cache lock").clear();
        }
    }
}

fn bearer_token(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A revocation log held in memory; `None` plays an unreachable auth.
    struct Log(Arc<Mutex<Option<Vec<Revocation>>>>);

    impl RevocationSource for Log {
        fn since(&self, cursor: i64) -> futures::future::BoxFuture<'_, anyhow::Result<RevocationPage>> {
            let entries = self.0.lock().unwrap().clone();
            Box::pin(async move {
                let entries = entries.ok_or_else(|| anyhow::anyhow!("auth is down"))?;
                let after: Vec<Revocation> = entries.into_iter().skip(cursor as usize).collect();
                Ok(RevocationPage { cursor: cursor + after.len() as i64, revocations: after, more: false })
            })
        }
    }

    fn verifier(log: &Arc<Mutex<Option<Vec<Revocation>>>>) -> TokenVerifier {
        TokenVerifier::with_keys("iss", "aud", [], Log(log.clone()), Duration::from_secs(1))
    }

    fn remember(verifier: &TokenVerifier, token: &str, viewer: &Viewer, expires: i64) {
        verifier.inner.verified.lock().unwrap().put(token.to_owned(), (viewer.clone(), expires));
    }

    fn viewer(session_version: i64) -> Viewer {
        Viewer { user_id: Uuid::new_v4(), token_id: "jti".into(), issued_at: 0, session_version }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_others_are_refused() {
        assert_eq!(bearer_token(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer_token(b"bearer abc"), Some("abc"));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"Bearer"), None);
    }

    #[tokio::test]
    async fn a_remembered_token_counts_only_until_it_expires() {
        let verifier = verifier(&Arc::new(Mutex::new(Some(vec![]))));
        let viewer = viewer(0);
        let now = chrono::Utc::now().timestamp();
        remember(&verifier, "fresh", &viewer, now + 60);
        remember(&verifier, "stale", &viewer, now - 1);

        assert_eq!(verifier.verify("fresh").await, Ok(viewer.clone()), "served from memory");
        assert_eq!(verifier.verify("stale").await, Err(TokenError::Malformed), "checked again, and refused");
    }

    #[tokio::test]
    async fn a_remembered_token_is_refused_once_its_version_is_revoked() {
        let log = Arc::new(Mutex::new(Some(vec![])));
        let verifier = verifier(&log);
        let (old, current) = (viewer(2), viewer(0));
        let expires = chrono::Utc::now().timestamp() + 60;
        remember(&verifier, "old", &old, expires);
        remember(&verifier, "current", &current, expires);
        assert_eq!(verifier.verify("old").await, Ok(old.clone()));

        let until = expires;
        log.lock().unwrap().as_mut().unwrap().push(Revocation { user: old.user_id, version: 3, until });
        verifier.inner.sessions.poll().await;

        assert_eq!(verifier.verify("old").await, Err(TokenError::Revoked), "a version below the user's latest");
        assert_eq!(verifier.verify("current").await, Ok(current), "another user's token is untouched");
        verifier.note_revocation(Revocation { user: old.user_id, version: 2, until });
        assert_eq!(verifier.verify("old").await, Err(TokenError::Revoked), "versions never go back");
    }

    #[tokio::test]
    async fn no_token_is_accepted_before_the_revocations_are_loaded_once() {
        let log = Arc::new(Mutex::new(None));
        let verifier = verifier(&log);
        let viewer = viewer(0);
        remember(&verifier, "token", &viewer, chrono::Utc::now().timestamp() + 60);

        assert_eq!(verifier.verify("token").await, Err(TokenError::Unavailable), "auth unreachable at start");

        *log.lock().unwrap() = Some(vec![]);
        verifier.inner.sessions.poll().await;
        assert_eq!(verifier.verify("token").await, Ok(viewer.clone()), "loaded");

        *log.lock().unwrap() = None;
        verifier.inner.sessions.poll().await;
        assert_eq!(verifier.verify("token").await, Ok(viewer), "a later failure keeps what was learned");
    }
}
