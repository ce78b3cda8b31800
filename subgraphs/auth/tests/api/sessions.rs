//! Ending sessions: earlier access tokens refused at once here (and, through
//! the revocation log, within a poll everywhere else), refresh races forgiven
//! within the grace window, reuse after it punished.

use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kit::config::IdentitySettings;
use kit::{Env, TokenVerifier};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Session, TestApp, error_code, session_of, spawn_app, spawn_app_with, test_key_pem};

const CHANGE_PASSWORD: &str =
    "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";

fn signed_in(app: &TestApp, session: &Session) -> impl Future<Output = bool> {
    let me = app.me(&session.access_token);
    async move { me.await["data"]["me"].is_object() }
}

/// Moves the rotation of every refresh token back by `seconds`.
async fn rotated_seconds_ago(app: &TestApp, seconds: i64) {
    sqlx::query("UPDATE auth.refresh_tokens SET replaced_at = replaced_at - make_interval(secs => $1)")
        .bind(seconds as f64)
        .execute(&app.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn logout_all_and_change_password_refuse_earlier_access_tokens_at_once_and_later_ones_work() {
    let app = spawn_app().await;
    let email = "ended@example.com";
    let first = session_of(&app.register(email, PASSWORD).await, "register");
    let other = session_of(&app.login(email, PASSWORD).await, "login");

    let ended = app.graphql(Some(&first.access_token), "mutation { logoutAll }", json!({})).await;
    assert_eq!(ended["data"]["logoutAll"], true, "{ended}");
    for session in [&first, &other] {
        assert_eq!(error_code(&app.me(&session.access_token).await), "UNAUTHENTICATED", "an earlier token");
    }
    let second = session_of(&app.login(email, PASSWORD).await, "login");
    assert!(signed_in(&app, &second).await, "a token issued afterwards works");

    let changed =
        app.graphql(Some(&second.access_token), CHANGE_PASSWORD, json!({ "c": PASSWORD, "n": "brand new 2" })).await;
    assert_eq!(changed["data"]["changePassword"], true, "{changed}");
    assert_eq!(error_code(&app.me(&second.access_token).await), "UNAUTHENTICATED");
    let third = session_of(&app.login(email, "brand new 2").await, "login");
    assert!(signed_in(&app, &third).await);
}

#[tokio::test]
async fn a_token_without_a_session_version_counts_as_version_zero() {
    let app = spawn_app().await;
    let session = app.signed_up().await;
    let kid = jsonwebtoken::decode_header(&session.access_token).unwrap().kid.unwrap();
    // As issued before versions existed: no `sv` claim.
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": session.user_id, "iss": "taskgraph-auth", "aud": "taskgraph",
        "exp": now + 600, "iat": now, "jti": "old", "typ": "access", "kid": kid
    });
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid);
    let key = EncodingKey::from_ed_pem(test_key_pem().as_bytes()).unwrap();
    let old = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    assert_eq!(app.me(&old).await["data"]["me"]["id"], session.user_id.as_str());

    app.graphql(Some(&session.access_token), "mutation { logoutAll }", json!({})).await;

    assert_eq!(error_code(&app.me(&old).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_rotated_token_presented_again_within_the_grace_window_gets_the_same_successor() {
    let app = spawn_app().await;
    let first = app.signed_up().await;
    let second = session_of(&app.refresh(&first.refresh_token).await, "refreshToken");

    // Another tab, or a retry of a request whose answer was lost.
    let again = session_of(&app.refresh(&first.refresh_token).await, "refreshToken");

    assert_eq!(again.refresh_token, second.refresh_token, "the same successor");
    assert!(signed_in(&app, &again).await, "a fresh access token");
    assert!(signed_in(&app, &second).await, "nothing was revoked");
    let third = session_of(&app.refresh(&second.refresh_token).await, "refreshToken");
    assert!(signed_in(&app, &third).await, "the family goes on");
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_all_get_its_successor() {
    let app = spawn_app().await;
    let first = app.signed_up().await;

    let refreshes = (0..4).map(|_| app.refresh(&first.refresh_token));
    let answers = futures::future::join_all(refreshes).await;

    let successors: Vec<String> =
        answers.iter().map(|answer| session_of(answer, "refreshToken").refresh_token).collect();
    assert!(successors.iter().all(|s| *s == successors[0]), "{successors:?}");
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.refresh_tokens WHERE replaced_at IS NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(live, 1, "one successor was stored");
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_family_and_its_users_access_tokens() {
    let app = spawn_app().await;
    let first = app.signed_up().await;
    let second = session_of(&app.refresh(&first.refresh_token).await, "refreshToken");
    rotated_seconds_ago(&app, 31).await;

    let replay = app.refresh(&first.refresh_token).await;

    assert_eq!(error_code(&replay), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.refresh(&second.refresh_token).await), "UNAUTHENTICATED", "the family is revoked");
    assert_eq!(error_code(&app.me(&second.access_token).await), "UNAUTHENTICATED", "so are its access tokens");
    let versions: i64 =
        sqlx::query_scalar("SELECT session_version FROM auth.users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(versions, 1);
}

#[tokio::test]
async fn reuse_with_the_grace_window_off_revokes_at_once() {
    let app = spawn_app_with(|env| env.set("REFRESH_REUSE_GRACE", "0s")).await;
    let first = app.signed_up().await;
    let second = session_of(&app.refresh(&first.refresh_token).await, "refreshToken");

    assert_eq!(error_code(&app.refresh(&first.refresh_token).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.refresh(&second.refresh_token).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn session_revocations_are_served_in_order_after_a_cursor() {
    let app = spawn_app().await;
    let a = session_of(&app.register("a@example.com", PASSWORD).await, "register");
    let b = session_of(&app.register("b@example.com", PASSWORD).await, "register");
    for email in ["a@example.com", "b@example.com", "a@example.com"] {
        let fresh = session_of(&app.login(email, PASSWORD).await, "login");
        app.graphql(Some(&fresh.access_token), "mutation { logoutAll }", json!({})).await;
    }
    let page: Value = app.get("/.well-known/session-revocations").await.json().await.unwrap();
    let seen: Vec<(String, i64)> = page["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["user"].as_str().unwrap().to_owned(), r["version"].as_i64().unwrap()))
        .collect();
    assert_eq!(seen, [(a.user_id.clone(), 1), (b.user_id.clone(), 1), (a.user_id.clone(), 2)], "{page}");
    assert_eq!(page["more"], false);
    let ttl_end = chrono::Utc::now().timestamp() + 15 * 60;
    assert!((ttl_end - 5..=ttl_end).contains(&page["revocations"][2]["until"].as_i64().unwrap()), "{page}");

    let after: Value =
        app.get(&format!("/.well-known/session-revocations?since={}", page["cursor"])).await.json().await.unwrap();
    assert_eq!(after["revocations"], json!([]));
    assert_eq!(after["cursor"], page["cursor"]);
    let beyond: Value = app.get("/.well-known/session-revocations?since=999999").await.json().await.unwrap();
    assert_eq!(beyond["revocations"].as_array().unwrap().len(), 3, "a cursor past the end starts over: {beyond}");
    let wrong = app.get("/.well-known/session-revocations?since=soon").await;
    assert_eq!(wrong.status(), 400);
}

#[tokio::test]
async fn another_replica_refuses_an_earlier_token_once_it_reads_the_log() {
    let app = spawn_app().await;
    let replica = spawn_app_with(|env| env.set("DATABASE_URL", app.database_url())).await;
    let session = app.signed_up().await;
    assert!(signed_in(&replica, &session).await);

    app.graphql(Some(&session.access_token), "mutation { logoutAll }", json!({})).await;

    replica
        .eventually("the replica to refuse the token", || async {
            replica.me(&session.access_token).await["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        })
        .await;
}

fn key_pair(seed: u8) -> (String, String) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let private = key.to_pkcs8_pem(Default::default()).unwrap().to_string();
    (private, key.verifying_key().to_public_key_pem(Default::default()).unwrap())
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn a_rotation_keeps_the_previous_keys_tokens_valid_and_signs_with_the_new_key() {
    let (old_private, old_public) = key_pair(11);
    let (new_private, _) = key_pair(12);
    let before = spawn_app_with(|env| env.set("JWT_PRIVATE_KEY", old_private)).await;
    let session = before.signed_up().await;
    // The deployment after the rotation: the new key signs, the old one is previous.
    let after = spawn_app_with(|env: &mut Env| {
        env.set("DATABASE_URL", before.database_url());
        env.set("JWT_PRIVATE_KEY", new_private);
        env.set("JWT_PREVIOUS_PUBLIC_KEYS", old_public);
    })
    .await;

    assert!(signed_in(&after, &session).await, "a token of the old key is still valid");
    let renewed = session_of(&after.refresh(&session.refresh_token).await, "refreshToken");
    assert_ne!(kid_of(&renewed.access_token), kid_of(&session.access_token), "signed with the new key");
    let jwks: Value = after.get("/.well-known/jwks.json").await.json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, [kid_of(&renewed.access_token), kid_of(&session.access_token)], "current first");

    // Another service's view, through the JWKS.
    let settings = IdentitySettings::from_env(&mut Env::from_pairs::<String, String>([]));
    let verifier = TokenVerifier::remote(&settings, &format!("{}/.well-known/jwks.json", after.address));
    for token in [&session.access_token, &renewed.access_token] {
        assert!(verifier.verify(token).await.is_ok(), "both keys verify through the JWKS");
    }
}
