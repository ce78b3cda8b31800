//! Access tokens (EdDSA JWTs) and refresh tokens (opaque random strings).

use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use kit::TokenVerifier;
use kit::identity::{ACCESS_TOKEN_TYPE, AccessClaims};
use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::JwtSettings;

/// An Ed25519 signing key with its key id (the RFC 7638 JWK thumbprint).
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    public: [u8; 32],
}

impl SigningKey {
    /// Reads a PKCS#8 PEM private key (`openssl genpkey -algorithm ed25519`).
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|_| anyhow::anyhow!("not an Ed25519 PKCS#8 PEM private key"))?;
        Self::from_dalek(&key)
    }

    /// A fresh random key (tokens it signs die with the process).
    pub fn generate() -> anyhow::Result<Self> {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        Self::from_dalek(&ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    fn from_dalek(key: &ed25519_dalek::SigningKey) -> anyhow::Result<Self> {
        let der = key.to_pkcs8_der().map_err(|_| anyhow::anyhow!("encoding the signing key"))?;
        let public = key.verifying_key().to_bytes();
        Ok(Self { kid: thumbprint(&public), encoding: EncodingKey::from_ed_der(der.as_bytes()), public })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    fn x(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public)
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        json!({ "kty": "OKP", "crv": "Ed25519", "x": self.x(), "kid": self.kid, "alg": "EdDSA", "use": "sig" })
    }

    pub fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_ed_der(&self.public)
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order.
fn thumbprint(public: &[u8; 32]) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(public));
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Issues access tokens.
pub struct AccessTokens {
    key: SigningKey,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl AccessTokens {
    pub fn new(key: SigningKey, settings: &JwtSettings) -> Self {
        Self { key, issuer: settings.issuer.clone(), audience: settings.audience.clone(), ttl: settings.access_ttl }
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl.as_secs() as i64
    }

    pub fn issue(&self, user_id: Uuid) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user_id.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + self.ttl_secs(),
            iat: now,
            jti: Uuid::new_v4().to_string(),
            typ: ACCESS_TOKEN_TYPE.to_owned(),
            kid: self.key.kid.clone(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key.encoding).context("signing an access token")
    }

    /// `GET /.well-known/jwks.json`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.key.jwk()] })
    }

    /// A verifier for the tokens this issuer signs.
    pub fn verifier(&self) -> TokenVerifier {
        TokenVerifier::with_keys(&self.issuer, &self.audience, [(self.key.kid.clone(), self.key.decoding_key())])
    }
}

/// A new refresh token (256 random bits, base64url) and the hash we store.
pub fn new_refresh_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// Refresh tokens carry 256 bits of entropy, so one fast hash suffices: a
/// leaked table cannot be reversed to usable tokens.
pub fn hash_refresh_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Length of a refresh token; others are refused before any lookup.
pub const REFRESH_TOKEN_LEN: usize = 43;

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> JwtSettings {
        JwtSettings {
            issuer: "iss".into(),
            audience: "aud".into(),
            private_key_pem: None,
            access_ttl: Duration::from_secs(60),
            refresh_ttl: Duration::from_secs(600),
        }
    }

    #[tokio::test]
    async fn issued_tokens_verify_and_foreign_keys_do_not() {
        let tokens = AccessTokens::new(SigningKey::generate().unwrap(), &settings());
        let user = Uuid::new_v4();
        let token = tokens.issue(user).unwrap();
        let viewer = tokens.verifier().verify(&token).await.unwrap();
        assert_eq!(viewer.user_id, user);

        let other = AccessTokens::new(SigningKey::generate().unwrap(), &settings());
        assert!(other.verifier().verify(&token).await.is_err());
    }

    #[test]
    fn pem_keys_round_trip_with_a_stable_kid() {
        let pem = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]).to_pkcs8_pem(Default::default()).unwrap();
        let a = SigningKey::from_pem(&pem).unwrap();
        let b = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert!(SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----").is_err());
    }

    #[test]
    fn refresh_tokens_are_long_random_and_hashed() {
        let (a, hash_a) = new_refresh_token();
        let (b, _) = new_refresh_token();
        assert_eq!(a.len(), REFRESH_TOKEN_LEN);
        assert_ne!(a, b);
        assert_eq!(hash_a, hash_refresh_token(&a));
    }
}
