//! The token verifier against a JWKS server of the test's own: a key dropped
//! from the set stops counting within the refresh interval, and a JWKS that
//! cannot be fetched makes tokens uncheckable (retry), never invalid.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use platform::config::IdentitySettings;
use platform::identity::{ACCESS_TOKEN_TYPE, AccessClaims, TokenError};
use platform::testing::eventually;
use platform::{Env, TokenVerifier};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Key {
    kid: String,
    jwk: Value,
    encoding: jsonwebtoken::EncodingKey,
}

impl Key {
    fn new(seed: u8) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let kid = format!("key-{seed}");
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
        let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x });
        let encoding = jsonwebtoken::EncodingKey::from_ed_der(key.to_pkcs8_der().unwrap().as_bytes());
        Self { kid, jwk, encoding }
    }

    fn token(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: Uuid::new_v4().to_string(),
            iss: "taskgraph-auth".into(),
            aud: "taskgraph".into(),
            exp: now + 600,
            iat: now,
            jti: Uuid::new_v4().to_string(),
            typ: ACCESS_TOKEN_TYPE.into(),
            kid: self.kid.clone(),
            sv: 0,
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}

/// What the JWKS endpoint answers, changeable while the test runs.
type Answer = Arc<Mutex<(StatusCode, String)>>;

/// Serves `answer` as the JWKS and an empty revocation log; the JWKS URL.
async fn serve_jwks(answer: Answer) -> String {
    let jwks = move || {
        let answer = answer.clone();
        async move { answer.lock().unwrap().clone() }
    };
    let revocations = || async { axum::Json(json!({ "cursor": 0, "revocations": [], "more": false })) };
    let routes = axum::Router::new()
        .route("/.well-known/jwks.json", axum::routing::get(jwks))
        .route("/.well-known/session-revocations", axum::routing::get(revocations));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes).await });
    url
}

fn key_set(keys: &[&Key]) -> (StatusCode, String) {
    (StatusCode::OK, json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string())
}

fn verifier(url: &str, jwks_refresh: &str) -> TokenVerifier {
    let settings = IdentitySettings::from_env(&mut Env::from_pairs([
        ("JWKS_REFRESH_INTERVAL", jwks_refresh),
        ("REVOCATION_POLL_INTERVAL", "50ms"),
    ]));
    TokenVerifier::remote(&settings, url)
}

#[tokio::test]
async fn a_key_removed_from_the_jwks_is_refused_after_the_refresh_interval() {
    let (old, new) = (Key::new(1), Key::new(2));
    let answer: Answer = Arc::new(Mutex::new(key_set(&[&new, &old])));
    let verifier = verifier(&serve_jwks(answer.clone()).await, "1s");
    let stop = CancellationToken::new();
    tokio::spawn(verifier.clone().keep_fresh(stop.clone()));
    let (old_token, new_token) = (old.token(), new.token());
    assert!(verifier.verify(&old_token).await.is_ok(), "both keys are trusted");
    assert!(verifier.verify(&new_token).await.is_ok());

    *answer.lock().unwrap() = key_set(&[&new]);

    eventually("the removed key to be refused", || async {
        verifier.verify(&old_token).await == Err(TokenError::UnknownKey)
    })
    .await;
    assert!(verifier.verify(&new_token).await.is_ok(), "the key still published still verifies");
    stop.cancel();
}

#[tokio::test]
async fn a_jwks_that_cannot_be_fetched_makes_tokens_unavailable_not_invalid() {
    let key = Key::new(3);
    let token = key.token();
    let answer: Answer = Arc::new(Mutex::new((StatusCode::BAD_GATEWAY, "upstream down".into())));
    let url = serve_jwks(answer.clone()).await;
    let down = verifier("http://127.0.0.1:9/.well-known/jwks.json", "5m");

    assert_eq!(down.verify(&token).await, Err(TokenError::Unavailable), "nothing listening");
    let failures =
        [(StatusCode::BAD_GATEWAY, "upstream down"), (StatusCode::OK, "garbage"), (StatusCode::OK, "{\"keys\":[]}")];
    for (status, body) in failures {
        *answer.lock().unwrap() = (status, body.to_owned());
        let verifier = verifier(&url, "5m");
        assert_eq!(verifier.verify(&token).await, Err(TokenError::Unavailable), "{status} {body}");
    }

    // Failed fetches are retried (at most every second) until one succeeds.
    let verifier = verifier(&url, "5m");
    assert_eq!(verifier.verify(&token).await, Err(TokenError::Unavailable));
    *answer.lock().unwrap() = key_set(&[&key]);
    eventually("the token to verify once the JWKS is back", || async { verifier.verify(&token).await.is_ok() }).await;
    let foreign = Key::new(4).token();
    assert_eq!(verifier.verify(&foreign).await, Err(TokenError::UnknownKey), "unknown after a successful fetch");
}
