//! Passwords cannot be guessed through the back door, and bcrypt is shared fairly.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, error_code, session_of, spawn_app_with};

const CHANGE_PASSWORD: &str =
    "mutation($current: String!, $new: String!) { changePassword(currentPassword: $current, newPassword: $new) }";

async fn change_password(app: &TestApp, token: &str, current: &str) -> Value {
    app.graphql(Some(token), CHANGE_PASSWORD, json!({ "current": current, "new": "a new password 2" })).await
}

fn retry_after(response: &Value) -> u64 {
    response["errors"][0]["extensions"]["retryAfter"].as_u64().unwrap_or_else(|| panic!("no retryAfter in {response}"))
}

#[tokio::test]
async fn forty_concurrent_wrong_password_changes_are_answered_and_another_user_logs_in_promptly() {
    // A production cost, so that a queue of 40 hashes would take many seconds.
    let app = spawn_app_with(|env| {
        env.set("BCRYPT_COST", "12");
        env.set("BCRYPT_MAX_CONCURRENCY", "1");
    })
    .await;
    let attacker = app.signed_up().await;
    app.register("bystander@example.com", PASSWORD).await;

    let guesses = (0..40).map(|i| {
        let (app, token) = (&app, attacker.access_token.clone());
        async move { change_password(app, &token, &format!("guess number {i}")).await }
    });
    let bystander = async {
        let started = Instant::now();
        let login = app.login("bystander@example.com", PASSWORD).await;
        (login, started.elapsed())
    };
    let all_answered = tokio::time::timeout(
        Duration::from_secs(60),
        futures::future::join(futures::future::join_all(guesses), bystander),
    );
    let (answers, (login, waited)) = all_answered.await.expect("every request is answered");

    session_of(&login, "login");
    assert!(waited < Duration::from_secs(5), "the bystander's login took {waited:?}");
    let codes: Vec<&str> = answers.iter().map(error_code).collect();
    let checked = codes.iter().filter(|c| **c == "BAD_USER_INPUT").count();
    let refused: Vec<&Value> = answers.iter().filter(|a| error_code(a) == "RATE_LIMITED").collect();
    assert_eq!(checked + refused.len(), 40, "{codes:?}");
    assert!(checked <= 5, "at most the failure limit's 5 guesses ran bcrypt: {codes:?}");
    assert!(refused.iter().all(|a| retry_after(a) >= 1), "{refused:?}");
}

#[tokio::test]
async fn after_the_limit_even_the_right_password_waits_for_the_window() {
    let app = spawn_app_with(|env| env.set("PASSWORD_FAILURE_LIMIT", "3/2s")).await;
    let session = app.signed_up().await;
    for _ in 0..3 {
        assert_eq!(
            error_code(&change_password(&app, &session.access_token, "wrong password 1").await),
            "BAD_USER_INPUT"
        );
    }

    let locked = change_password(&app, &session.access_token, PASSWORD).await;

    assert_eq!(error_code(&locked), "RATE_LIMITED", "{locked}");
    assert!((1..=2).contains(&retry_after(&locked)), "{locked}");
    let delete = app
        .graphql(
            Some(&session.access_token),
            "mutation($p: String!) { deleteAccount(password: $p) }",
            json!({ "p": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&delete), "RATE_LIMITED", "deleteAccount shares the limit: {delete}");
    app.eventually("the window to pass", || async {
        change_password(&app, &session.access_token, PASSWORD).await["data"]["changePassword"] == true
    })
    .await;
}

#[tokio::test]
async fn login_failures_count_against_the_same_limit_and_success_clears_it() {
    let app = spawn_app_with(|env| env.set("PASSWORD_FAILURE_LIMIT", "3/2s")).await;
    app.register("owner@example.com", PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(error_code(&app.login("owner@example.com", "wrong password 1").await), "UNAUTHENTICATED");
    }
    // A success clears the count: three more wrong ones are checked before the limit bites.
    session_of(&app.login("Owner@Example.com", PASSWORD).await, "login");
    for _ in 0..3 {
        assert_eq!(error_code(&app.login("owner@example.com", "wrong password 1").await), "UNAUTHENTICATED");
    }

    let locked = app.login("owner@example.com", PASSWORD).await;

    assert_eq!(error_code(&locked), "RATE_LIMITED", "{locked}");
    assert!(retry_after(&locked) >= 1, "{locked}");
    // An unknown email is limited alike, so the limit does not tell which emails exist.
    for _ in 0..3 {
        app.login("nobody@example.com", "wrong password 1").await;
    }
    assert_eq!(error_code(&app.login("nobody@example.com", "wrong password 1").await), "RATE_LIMITED");
    app.eventually("the window to pass", || async {
        app.login("owner@example.com", PASSWORD).await["data"]["login"]["accessToken"].is_string()
    })
    .await;
}
