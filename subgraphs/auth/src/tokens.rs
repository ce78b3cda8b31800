//! Access tokens (EdDSA JWTs) and refresh tokens (opaque strings of 256 bits).

use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header};
use kit::TokenVerifier;
use kit::identity::{ACCESS_TOKEN_TYPE, AccessClaims, RevocationSource};
use rand::RngCore;
use ring::hmac;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::JwtSettings;
use crate::keys::{SigningKey, VerificationKey};

/// Issues access tokens with the current key; its tokens and those of the
/// previous keys verify.
pub struct AccessTokens {
    key: SigningKey,
    /// Keys rotated out, still published and trusted until their tokens expire.
    previous: Vec<VerificationKey>,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl AccessTokens {
    pub fn new(key: SigningKey, previous: Vec<VerificationKey>, settings: &JwtSettings) -> Self {
        let previous = previous.into_iter().filter(|p| p.kid() != key.kid()).collect();
        Self {
            key,
            previous,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl: settings.access_ttl,
        }
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl.as_secs() as i64
    }

    /// A token for `user_id` at its current `session_version`.
    pub fn issue(&self, user_id: Uuid, session_version: i64) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user_id.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + self.ttl_secs(),
            iat: now,
            jti: Uuid::new_v4().to_string(),
            typ: ACCESS_TOKEN_TYPE.to_owned(),
            kid: self.key.kid().to_owned(),
            sv: session_version,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key.kid().to_owned());
        jsonwebtoken::encode(&header, &claims, self.key.encoding()).context("signing an access token")
    }

    fn verification_keys(&self) -> impl Iterator<Item = &VerificationKey> {
        std::iter::once(self.key.public()).chain(&self.previous)
    }

    /// `GET /.well-known/jwks.json`: the current key first, then the previous ones.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.verification_keys().map(VerificationKey::jwk).collect::<Vec<_>>() })
    }

    /// A verifier for the tokens of every published key, refusing those whose
    /// sessions `revocations` says ended (read every `poll_interval`).
    pub fn verifier(&self, revocations: impl RevocationSource, poll_interval: Duration) -> TokenVerifier {
        let keys = self.verification_keys().map(|k| (k.kid().to_owned(), k.decoding_key()));
        TokenVerifier::with_keys(&self.issuer, &self.audience, keys.collect::<Vec<_>>(), revocations, poll_interval)
    }
}

/// Makes refresh tokens: a new session's at random, a rotation's successor
/// derived from the token it replaces, HMAC(key, parent). Only hashes are
/// stored, yet the presenter of a just-rotated token can be handed the same
/// successor again (see `Accounts::refresh`): deriving it needs the parent,
/// which the store never holds, and the key, which never leaves the process.
pub struct RefreshTokens {
    successors: hmac::Key,
}

impl RefreshTokens {
    /// Refresh tokens whose successors are derived from `key`.
    pub fn new(key: &SigningKey) -> Self {
        Self { successors: key.successors().clone() }
    }

    /// A new session's token (256 random bits, base64url) and the hash we store.
    pub fn random(&self) -> (String, Vec<u8>) {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        with_hash(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The token that replaces `parent` when it is rotated, and its hash: the
    /// same for the same parent, unpredictable without the key.
    pub fn successor(&self, parent: &str) -> (String, Vec<u8>) {
        with_hash(URL_SAFE_NO_PAD.encode(hmac::sign(&self.successors, parent.as_bytes()).as_ref()))
    }
}

fn with_hash(token: String) -> (String, Vec<u8>) {
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
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
    use futures::future::BoxFuture;
    use kit::identity::RevocationPage;

    use super::*;
    use crate::keys::public_keys_from_pem;

    fn settings() -> JwtSettings {
        JwtSettings {
            issuer: "iss".into(),
            audience: "aud".into(),
            private_key_pem: None,
            previous_public_keys: Vec::new(),
            access_ttl: Duration::from_secs(60),
            refresh_ttl: Duration::from_secs(600),
            refresh_reuse_grace: Duration::from_secs(30),
            revocation_poll_interval: Duration::from_secs(1),
        }
    }

    struct NoRevocations;

    impl RevocationSource for NoRevocations {
        fn since(&self, cursor: i64) -> BoxFuture<'_, anyhow::Result<RevocationPage>> {
            Box::pin(async move { Ok(RevocationPage { cursor, revocations: vec![], more: false }) })
        }
    }

    fn verifier(tokens: &AccessTokens) -> TokenVerifier {
        tokens.verifier(NoRevocations, Duration::from_secs(1))
    }

    fn dalek(seed: u8) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
    }

    fn public_pem(seed: u8) -> String {
        dalek(seed).verifying_key().to_public_key_pem(Default::default()).unwrap()
    }

    #[tokio::test]
    async fn issued_tokens_verify_and_foreign_keys_do_not() {
        let tokens = AccessTokens::new(SigningKey::generate().unwrap(), vec![], &settings());
        let user = Uuid::new_v4();
        let token = tokens.issue(user, 3).unwrap();
        let viewer = verifier(&tokens).verify(&token).await.unwrap();
        assert_eq!((viewer.user_id, viewer.session_version), (user, 3));

        let other = AccessTokens::new(SigningKey::generate().unwrap(), vec![], &settings());
        assert!(verifier(&other).verify(&token).await.is_err());
    }

    #[tokio::test]
    async fn tokens_of_a_previous_key_verify_and_new_ones_are_signed_with_the_current_key() {
        let old_pem = dalek(1).to_pkcs8_pem(Default::default()).unwrap();
        let old = AccessTokens::new(SigningKey::from_pem(&old_pem).unwrap(), vec![], &settings());
        let old_token = old.issue(Uuid::new_v4(), 0).unwrap();

        let previous = public_keys_from_pem(&public_pem(1)).unwrap();
        let current = AccessTokens::new(
            SigningKey::from_pem(&dalek(2).to_pkcs8_pem(Default::default()).unwrap()).unwrap(),
            previous,
            &settings(),
        );

        assert!(verifier(&current).verify(&old_token).await.is_ok(), "the previous key still verifies");
        let new_kid = jsonwebtoken::decode_header(current.issue(Uuid::new_v4(), 0).unwrap()).unwrap().kid;
        assert_eq!(new_kid.as_deref(), Some(current.key.kid()));
        let kids: Vec<Value> = current.jwks()["keys"].as_array().unwrap().iter().map(|k| k["kid"].clone()).collect();
        assert_eq!(kids, [json!(current.key.kid()), json!(old.key.kid())], "current first, then previous");
    }

    #[test]
    fn refresh_tokens_are_long_random_and_hashed_and_successors_are_derived() {
        let pem = dalek(7).to_pkcs8_pem(Default::default()).unwrap();
        let refresh = RefreshTokens::new(&SigningKey::from_pem(&pem).unwrap());
        let (a, hash_a) = refresh.random();
        let (b, _) = refresh.random();
        assert_eq!(a.len(), REFRESH_TOKEN_LEN);
        assert_ne!(a, b);
        assert_eq!(hash_a, hash_refresh_token(&a));

        let (successor, hash) = refresh.successor(&a);
        assert_eq!(successor.len(), REFRESH_TOKEN_LEN);
        assert_eq!(hash, hash_refresh_token(&successor));
        assert_eq!(refresh.successor(&a).0, successor, "the same parent, the same successor");
        assert_ne!(refresh.successor(&b).0, successor);
        let other_key = RefreshTokens::new(&SigningKey::generate().unwrap());
        assert_ne!(other_key.successor(&a).0, successor, "unpredictable without the key");
    }
}
