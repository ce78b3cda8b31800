use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kit::TokenVerifier;
use kit::config::IdentitySettings;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, session_of, spawn_app, test_key_pem};

async fn kid(app: &TestApp) -> String {
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    jwks["keys"][0]["kid"].as_str().unwrap().to_owned()
}

fn sign(claims: &Value, kid: &str, pem: &str) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_pem(pem.as_bytes()).unwrap()).unwrap()
}

fn claims(user_id: &str, overrides: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "sub": user_id, "iss": "taskgraph-auth", "aud": "taskgraph",
        "exp": now + 600, "iat": now, "jti": "t", "typ": "access", "kid": "k"
    });
    for (k, v) in overrides.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

#[tokio::test]
async fn refresh_issues_a_new_access_token_and_rotates_the_refresh_token() {
    let app = spawn_app().await;
    let first = app.signed_up().await;

    let response = app.refresh(&first.refresh_token).await;

    let second = session_of(&response, "refreshToken");
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.user_id, first.user_id);
    assert_eq!(app.me(&second.access_token).await["data"]["me"]["id"], first.user_id.as_str());
}

#[tokio::test]
async fn an_invalid_refresh_token_is_refused() {
    let app = spawn_app().await;
    for token in ["invalid.token.here", "", &"A".repeat(43)] {
        let response = app.refresh(token).await;
        assert_eq!(error_code(&response), "UNAUTHENTICATED", "{token:?}");
    }
}

#[tokio::test]
async fn access_tokens_are_not_refresh_tokens_and_the_reverse() {
    let app = spawn_app().await;
    let session = app.signed_up().await;

    assert_eq!(error_code(&app.refresh(&session.access_token).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.me(&session.refresh_token).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let first = app.signed_up().await;
    let second = session_of(&app.refresh(&first.refresh_token).await, "refreshToken");
    sqlx::query("UPDATE auth.refresh_tokens SET replaced_at = now() - interval '1 minute'")
        .execute(&app.pool)
        .await
        .unwrap();

    // The first token was stolen and replayed, after the grace window.
    let replay = app.refresh(&first.refresh_token).await;

    assert_eq!(error_code(&replay), "UNAUTHENTICATED");
    let legitimate = app.refresh(&second.refresh_token).await;
    assert_eq!(error_code(&legitimate), "UNAUTHENTICATED", "the family is revoked: {legitimate}");
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let app = spawn_app().await;
    let session = app.signed_up().await;
    sqlx::query("UPDATE auth.refresh_tokens SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();

    assert_eq!(error_code(&app.refresh(&session.refresh_token).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn refresh_tokens_are_stored_only_as_hashes() {
    let app = spawn_app().await;
    let session = app.signed_up().await;
    let found: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.refresh_tokens WHERE token_hash = $1")
        .bind(session.refresh_token.as_bytes())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(found, 0);
}

#[tokio::test]
async fn forged_expired_and_foreign_access_tokens_are_unauthenticated() {
    let app = spawn_app().await;
    let session = app.signed_up().await;
    let kid = kid(&app).await;
    let pem = test_key_pem();
    let user = session.user_id.as_str();
    let now = chrono::Utc::now().timestamp();

    // A control: a token we sign correctly is accepted, so the refusals below are meaningful.
    let good = sign(&claims(user, json!({})), &kid, &pem);
    assert_eq!(app.me(&good).await["data"]["me"]["id"], user);

    let other_key = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_pem(
        &ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]),
        Default::default(),
    )
    .unwrap();
    let mut tampered = session.access_token.clone();
    let middle = tampered.find('.').unwrap() + 5;
    let flipped = if &tampered[middle..=middle] == "A" { "B" } else { "A" };
    tampered.replace_range(middle..=middle, flipped);
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", session.access_token.split('.').nth(1).unwrap());

    let cases = [
        ("expired", sign(&claims(user, json!({ "exp": now - 60, "iat": now - 900 })), &kid, &pem)),
        ("wrong type", sign(&claims(user, json!({ "typ": "refresh" })), &kid, &pem)),
        ("wrong audience", sign(&claims(user, json!({ "aud": "elsewhere" })), &kid, &pem)),
        ("wrong issuer", sign(&claims(user, json!({ "iss": "evil" })), &kid, &pem)),
        ("foreign key", sign(&claims(user, json!({})), &kid, &other_key)),
        ("unknown kid", sign(&claims(user, json!({})), "nope", &pem)),
        ("tampered", tampered),
        ("alg none", unsigned),
        ("garbage", "not-a-jwt".to_owned()),
    ];
    for (case, token) in cases {
        let response = app.me(&token).await;
        assert_eq!(error_code(&response), "UNAUTHENTICATED", "{case}: {response}");
    }
}

#[tokio::test]
async fn jwks_publishes_the_key_that_verifies_issued_tokens() {
    let app = spawn_app().await;
    let session = app.signed_up().await;

    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(response.status(), 200);
    let jwks: Value = response.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str()),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    assert!(key.get("d").is_none(), "the private part must never be published");
    let header = jsonwebtoken::decode_header(&session.access_token).unwrap();
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());

    // Another service's view: keys fetched from the JWKS URL.
    let settings = IdentitySettings::from_env(&mut kit::Env::from_pairs::<String, String>([]));
    let verifier = TokenVerifier::remote(&settings, &format!("{}/.well-known/jwks.json", app.address));
    let viewer = verifier.verify(&session.access_token).await.expect("verifies through JWKS");
    assert_eq!(viewer.user_id.to_string(), session.user_id);
}
