use serde_json::json;

use crate::helpers::{PASSWORD, error_code, error_field, spawn_app};

#[tokio::test]
async fn register_creates_an_account_and_signs_it_in() {
    let app = spawn_app().await;

    let response = app.register("  New.User@Example.com ", PASSWORD).await;

    let payload = &response["data"]["register"];
    assert_eq!(payload["user"]["email"], "new.user@example.com", "{response}");
    assert_eq!(payload["expiresIn"], 900);
    assert!(payload["accessToken"].as_str().unwrap().split('.').count() == 3);
    assert_eq!(payload["refreshToken"].as_str().unwrap().len(), 43);
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM auth.users WHERE email = $1")
        .bind("new.user@example.com")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$2b$04$"), "bcrypt at the configured cost, never the password");
}

#[tokio::test]
async fn registering_a_taken_email_is_a_conflict_whatever_its_case() {
    let app = spawn_app().await;
    app.register("taken@example.com", PASSWORD).await;

    let response = app.register("TAKEN@example.com", PASSWORD).await;

    assert_eq!(error_code(&response), "CONFLICT", "{response}");
    assert!(response["data"].is_null());
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_give_one_account_and_conflicts() {
    let app = spawn_app().await;

    let attempts = futures::future::join_all((0..6).map(|_| app.register("race@example.com", PASSWORD))).await;

    let created = attempts.iter().filter(|r| r["data"]["register"].is_object()).count();
    // One hash in flight per account: the others are CONFLICT, or refused at once while it runs.
    let refused = attempts
        .iter()
        .filter(|r| matches!(r["errors"][0]["extensions"]["code"].as_str(), Some("CONFLICT" | "RATE_LIMITED")))
        .count();
    assert_eq!((created, refused), (1, 5), "{attempts:?}");
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(accounts, 1);
}

#[tokio::test]
async fn invalid_emails_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let too_long = format!("{}@example.com", "a".repeat(250));
    for email in ["not-an-email", "", "a@b", too_long.as_str()] {
        let response = app.register(email, PASSWORD).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{email:?}: {response}");
        assert_eq!(error_field(&response), "email");
    }
}

#[tokio::test]
async fn short_passwords_are_refused() {
    let app = spawn_app().await;
    let response = app.register("short@example.com", "ab1").await;
    assert_eq!(error_code(&response), "BAD_USER_INPUT");
    assert_eq!(error_field(&response), "password");
}

#[tokio::test]
async fn passwords_without_a_number_are_refused() {
    let app = spawn_app().await;
    let response = app.register("nonumber@example.com", "abcdefghij").await;
    assert_eq!(error_code(&response), "BAD_USER_INPUT");
    assert!(response["errors"][0]["message"].as_str().unwrap().contains("number"));
}

#[tokio::test]
async fn passwords_without_a_letter_or_over_72_bytes_are_refused() {
    let app = spawn_app().await;
    let too_long = format!("a1{}", "é".repeat(36)); // 74 bytes in 38 characters
    for password in ["1234567890", too_long.as_str()] {
        let response = app.register("rules@example.com", password).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
        assert_eq!(error_field(&response), "password");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn missing_arguments_are_graphql_validation_errors_not_crashes() {
    let app = spawn_app().await;
    let response =
        app.graphql(None, "mutation { register(email: \"x@example.com\") { accessToken } }", json!({})).await;
    assert!(response["errors"][0]["message"].as_str().unwrap().contains("password"), "{response}");
}

#[tokio::test]
async fn control_characters_in_emails_and_passwords_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        ("nul\u{0}@example.com", PASSWORD, "email"),
        ("c1\u{85}x@example.com", PASSWORD, "email"),
        ("tab@exam\tple.com", PASSWORD, "email"),
        ("nul@example.com", "correct horse 1\u{0}", "password"),
        ("tab@example.com", "correct\thorse 1", "password"),
        ("esc@example.com", "correct horse 1\u{1b}[2J", "password"),
    ];
    for (email, password, field) in cases {
        let response = app.register(email, password).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{email:?} {password:?}: {response}");
        assert_eq!(error_field(&response), field, "{response}");
        let message = response["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("control characters"), "{message}");
    }
    let login = app.login("nul\u{0}@example.com", PASSWORD).await;
    assert_eq!(error_field(&login), "email", "{login}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 0);
}
