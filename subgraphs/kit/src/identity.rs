//! Who is calling: verification of EdDSA access tokens.
//!
//! Only a valid access token makes a request authenticated: no other header,
//! claim or token type does. Keys come from the auth service's JWKS (cached,
//! refetched when a token names a key we do not know, at a bounded rate) or, in
//! the auth service itself, straight from its signing keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lru::LruCache;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The authenticated user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: Uuid,
    /// The token's `jti`.
    pub token_id: String,
    /// The token's `iat` (seconds since the epoch).
    pub issued_at: i64,
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
}

/// Verifies access tokens. Cheap to clone.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// Tokens already verified, with their expiry: a client's next requests skip
    /// the signature check (Ed25519 verification is most of the cost of a cached read).
    verified: Mutex<LruCache<String, (Viewer, i64)>>,
    jwks: Option<JwksSource>,
    validation: Validation,
}

struct JwksSource {
    url: String,
    client: reqwest::Client,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// A token naming an unknown key triggers at most one JWKS fetch per this interval,
/// so garbage tokens cannot turn us into a load generator against auth.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Tolerated clock skew between services.
const LEEWAY_SECS: u64 = 5;
/// Verified tokens remembered (about 0.5 KB each).
const VERIFIED_TOKENS: usize = 10_000;
/// Longer headers are refused before any parsing.
const MAX_TOKEN_LEN: usize = 4096;

impl TokenVerifier {
    fn with_source(issuer: &str, audience: &str, keys: HashMap<String, DecodingKey>, jwks: Option<JwksSource>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = LEEWAY_SECS;
        let verified = Mutex::new(LruCache::new(VERIFIED_TOKENS.try_into().expect("non-zero")));
        Self { inner: Arc::new(Inner { keys: RwLock::new(keys), verified, jwks, validation }) }
    }

    /// A verifier over known keys (the auth service verifying its own tokens).
    pub fn with_keys(issuer: &str, audience: &str, keys: impl IntoIterator<Item = (String, DecodingKey)>) -> Self {
        Self::with_source(issuer, audience, keys.into_iter().collect(), None)
    }

    /// A verifier that loads keys from a JWKS URL on demand.
    pub fn with_jwks(issuer: &str, audience: &str, url: impl Into<String>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a plain HTTP client always builds");
        let source = JwksSource { url: url.into(), client, last_fetch: tokio::sync::Mutex::new(None) };
        Self::with_source(issuer, audience, HashMap::new(), Some(source))
    }

    /// The viewer named by an `Authorization: Bearer` header, if it holds a valid
    /// access token. Anything else (no header, another scheme, a bad token) is anonymous.
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
        let now = chrono::Utc::now().timestamp();
        if let Some((viewer, expires)) = self.inner.verified.lock().expect("token cache lock").get(token)
            && now < *expires
        {
            return Ok(viewer.clone());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.refresh_keys().await;
                self.key(&kid).ok_or(TokenError::UnknownKey)?
            }
        };
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
        let viewer = Viewer { user_id, token_id: claims.jti, issued_at: claims.iat };
        self.inner.verified.lock().expect("token cache lock").put(token.to_owned(), (viewer.clone(), claims.exp));
        Ok(viewer)
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.inner.keys.read().expect("key lock is never poisoned").get(kid).cloned()
    }

    /// Refetches the JWKS unless that happened within the refetch interval.
    async fn refresh_keys(&self) {
        let Some(source) = &self.inner.jwks else { return };
        let mut last = source.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < JWKS_REFETCH_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        match fetch_jwks(source).await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "loaded JWKS");
                *self.inner.keys.write().expect("key lock is never poisoned") = keys;
            }
            Err(e) => tracing::warn!(error = %e, url = %source.url, "could not fetch JWKS"),
        }
    }
}

async fn fetch_jwks(source: &JwksSource) -> anyhow::Result<HashMap<String, DecodingKey>> {
    let set: JwkSet = source.client.get(&source.url).send().await?.error_for_status()?.json().await?;
    Ok(decoding_keys(&set))
}

/// The Ed25519 keys of a JWKS that carry a `kid`; others are ignored.
pub fn decoding_keys(set: &JwkSet) -> HashMap<String, DecodingKey> {
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

fn bearer_token(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

/// The viewer of a GraphQL request, or UNAUTHENTICATED.
pub fn require_viewer<'a>(ctx: &async_graphql::Context<'a>) -> Result<&'a Viewer, crate::ApiError> {
    ctx.data_opt::<Viewer>().ok_or_else(crate::ApiError::unauthenticated)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let verifier = TokenVerifier::with_keys("iss", "aud", []);
        let viewer = Viewer { user_id: Uuid::new_v4(), token_id: "jti".into(), issued_at: 0 };
        let now = chrono::Utc::now().timestamp();
        let remember = |token: &str, expires: i64| {
            verifier.inner.verified.lock().unwrap().put(token.to_owned(), (viewer.clone(), expires));
        };
        remember("fresh", now + 60);
        remember("stale", now - 1);

        assert_eq!(verifier.verify("fresh").await, Ok(viewer.clone()), "served from memory");
        assert_eq!(verifier.verify("stale").await, Err(TokenError::Malformed), "checked again, and refused");
    }
}
