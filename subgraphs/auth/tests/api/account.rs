use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, error_code, error_field, session_of, spawn_app};

async fn delete_account(app: &TestApp, token: Option<&str>, password: &str) -> Value {
    app.graphql(token, "mutation($p: String!) { deleteAccount(password: $p) }", json!({ "p": password })).await
}

#[tokio::test]
async fn me_returns_the_viewer_and_requires_a_token() {
    let app = spawn_app().await;
    let session = app.signed_up().await;

    assert_eq!(app.me(&session.access_token).await["data"]["me"]["id"], session.user_id.as_str());
    let anonymous = app.graphql(None, "{ me { id } }", json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn delete_account_with_a_valid_token_removes_everything_and_announces_it() {
    let app = spawn_app().await;
    let session = app.signed_up().await;

    let response = delete_account(&app, Some(&session.access_token), crate::helpers::PASSWORD).await;

    assert_eq!(response["data"]["deleteAccount"], true, "{response}");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.users").fetch_one(&app.pool).await.unwrap();
    let tokens: i64 =
        sqlx::query_scalar("SELECT count(*) FROM auth.refresh_tokens").fetch_one(&app.pool).await.unwrap();
    assert_eq!((users, tokens), (0, 0));
    let (event_type, payload): (String, Value) =
        sqlx::query_as("SELECT event_type, payload FROM auth.outbox").fetch_one(&app.pool).await.unwrap();
    assert_eq!(event_type, "user.deleted");
    assert_eq!(payload["data"]["userId"], session.user_id.as_str());
    // The account's tokens buy nothing any more.
    assert_eq!(error_code(&app.me(&session.access_token).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.refresh(&session.refresh_token).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn delete_account_without_a_token_is_unauthenticated() {
    let app = spawn_app().await;
    let response = delete_account(&app, None, PASSWORD).await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
}

#[tokio::test]
async fn delete_account_with_a_wrong_password_keeps_the_account() {
    let app = spawn_app().await;
    let session = app.signed_up().await;

    let response = delete_account(&app, Some(&session.access_token), "wrong password 1").await;

    assert_eq!(error_code(&response), "BAD_USER_INPUT");
    assert_eq!(error_field(&response), "password");
    assert_eq!(app.me(&session.access_token).await["data"]["me"]["id"], session.user_id.as_str());
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.outbox").fetch_one(&app.pool).await.unwrap();
    assert_eq!(events, 0);
}

#[tokio::test]
async fn logout_ends_one_session_only() {
    let app = spawn_app().await;
    let email = "two-devices@example.com";
    let phone = session_of(&app.register(email, PASSWORD).await, "register");
    let laptop = session_of(&app.login(email, PASSWORD).await, "login");

    let response = app
        .graphql(None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": phone.refresh_token }))
        .await;

    assert_eq!(response["data"]["logout"], true);
    assert_eq!(error_code(&app.refresh(&phone.refresh_token).await), "UNAUTHENTICATED");
    assert!(app.refresh(&laptop.refresh_token).await["data"]["refreshToken"].is_object());
    let unknown =
        app.graphql(None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": "A".repeat(43) })).await;
    assert_eq!(unknown["data"]["logout"], false);
}

#[tokio::test]
async fn logout_all_ends_every_session() {
    let app = spawn_app().await;
    let email = "everywhere@example.com";
    let phone = session_of(&app.register(email, PASSWORD).await, "register");
    let laptop = session_of(&app.login(email, PASSWORD).await, "login");

    let response = app.graphql(Some(&laptop.access_token), "mutation { logoutAll }", json!({})).await;

    assert_eq!(response["data"]["logoutAll"], true);
    for session in [&phone, &laptop] {
        assert_eq!(error_code(&app.refresh(&session.refresh_token).await), "UNAUTHENTICATED");
    }
    let anonymous = app.graphql(None, "mutation { logoutAll }", json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn change_password_checks_the_current_one_and_ends_every_session() {
    let app = spawn_app().await;
    let email = "changer@example.com";
    let session = session_of(&app.register(email, PASSWORD).await, "register");
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";

    let wrong =
        app.graphql(Some(&session.access_token), change, json!({ "c": "nope nope 1", "n": "brand new 2" })).await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
    assert_eq!(error_field(&wrong), "currentPassword");
    let weak = app.graphql(Some(&session.access_token), change, json!({ "c": PASSWORD, "n": "short1" })).await;
    assert_eq!(error_field(&weak), "newPassword");
    let control =
        app.graphql(Some(&session.access_token), change, json!({ "c": PASSWORD, "n": "brand new 2\u{0}" })).await;
    assert_eq!(error_code(&control), "BAD_USER_INPUT", "{control}");
    assert_eq!(error_field(&control), "newPassword");

    let ok = app.graphql(Some(&session.access_token), change, json!({ "c": PASSWORD, "n": "brand new 2" })).await;

    assert_eq!(ok["data"]["changePassword"], true, "{ok}");
    assert_eq!(error_code(&app.refresh(&session.refresh_token).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.login(email, PASSWORD).await), "UNAUTHENTICATED");
    assert!(app.login(email, "brand new 2").await["data"]["login"].is_object());
}
