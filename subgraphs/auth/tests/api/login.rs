use crate::helpers::{PASSWORD, error_code, session_of, spawn_app};

#[tokio::test]
async fn login_with_valid_credentials_returns_a_session() {
    let app = spawn_app().await;
    app.register("login@example.com", PASSWORD).await;

    let response = app.login("Login@Example.com", PASSWORD).await;

    let session = session_of(&response, "login");
    let me = app.me(&session.access_token).await;
    assert_eq!(me["data"]["me"]["email"], "login@example.com", "{me}");
}

#[tokio::test]
async fn login_with_a_wrong_password_is_unauthenticated() {
    let app = spawn_app().await;
    app.register("wrong@example.com", PASSWORD).await;

    let response = app.login("wrong@example.com", "not the password 1").await;

    assert_eq!(error_code(&response), "UNAUTHENTICATED");
    assert!(response["data"].is_null());
}

#[tokio::test]
async fn unknown_email_and_wrong_password_are_indistinguishable() {
    let app = spawn_app().await;
    app.register("known@example.com", PASSWORD).await;

    let wrong_password = app.login("known@example.com", "not the password 1").await;
    let unknown_email = app.login("nobody@example.com", PASSWORD).await;

    assert_eq!(error_code(&unknown_email), "UNAUTHENTICATED");
    assert_eq!(wrong_password["errors"][0]["message"], unknown_email["errors"][0]["message"]);
}

#[tokio::test]
async fn an_over_long_password_is_just_wrong() {
    let app = spawn_app().await;
    app.register("long@example.com", PASSWORD).await;
    let response = app.login("long@example.com", &"x1".repeat(100)).await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED", "{response}");
}
