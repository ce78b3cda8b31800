use std::time::Duration;

use files::signing::UrlSigner;
use uuid::Uuid;

use crate::helpers::{PDF, URL_SECRET, spawn_app};

fn signer() -> UrlSigner {
    UrlSigner::new(URL_SECRET.as_bytes(), Duration::from_secs(300), "")
}

#[tokio::test]
async fn the_owner_downloads_the_whole_file_with_its_headers() {
    let app = spawn_app().await;
    let user = app.user();
    let file = app.uploaded(&user, "report.pdf", PDF).await;
    let path = format!("/files/{}/content", file["id"].as_str().unwrap());

    let response = app.get(&path, Some(&user.token)).await;

    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["content-length"], PDF.len().to_string().as_str());
    assert_eq!(headers["etag"], format!("\"{}\"", file["sha256"].as_str().unwrap()).as_str());
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["content-disposition"], "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf");
    assert_eq!(response.bytes().await.unwrap().as_ref(), PDF);
}

#[tokio::test]
async fn the_signed_url_works_without_a_token() {
    let app = spawn_app().await;
    let user = app.user();
    let file = app.uploaded(&user, "report.pdf", PDF).await;

    let response = app.get(file["downloadUrl"].as_str().unwrap(), None).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), PDF);
}

#[tokio::test]
async fn single_ranges_are_served_partially_and_impossible_ones_refused() {
    let app = spawn_app().await;
    let user = app.user();
    let content: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let file = app.uploaded(&user, "letters.txt", &content).await;
    let url = format!("{}{}", app.address, file["downloadUrl"].as_str().unwrap());
    let get = |range: &'static str| app.client.get(&url).header("range", range).send();

    let middle = get("bytes=10-19").await.unwrap();
    let tail = get("bytes=-5").await.unwrap();
    let beyond = get("bytes=1000-").await.unwrap();

    assert_eq!(middle.status(), 206);
    assert_eq!(middle.headers()["content-range"], "bytes 10-19/1000");
    assert_eq!(middle.headers()["content-length"], "10");
    assert_eq!(middle.bytes().await.unwrap().as_ref(), &content[10..20]);
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &content[995..]);
    assert_eq!(beyond.status(), 416);
    assert_eq!(beyond.headers()["content-range"], "bytes */1000");
}

#[tokio::test]
async fn a_matching_etag_is_not_modified() {
    let app = spawn_app().await;
    let user = app.user();
    let file = app.uploaded(&user, "report.pdf", PDF).await;
    let url = format!("{}{}", app.address, file["downloadUrl"].as_str().unwrap());
    let etag = format!("\"{}\"", file["sha256"].as_str().unwrap());

    let same = app.client.get(&url).header("if-none-match", &etag).send().await.unwrap();
    let other = app.client.get(&url).header("if-none-match", "\"something-else\"").send().await.unwrap();

    assert_eq!(same.status(), 304);
    assert_eq!(same.headers()["etag"], etag.as_str());
    assert!(same.bytes().await.unwrap().is_empty());
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn bad_expired_or_foreign_signatures_and_other_users_are_not_found() {
    let app = spawn_app().await;
    let (owner, other) = (app.user(), app.user());
    let file = app.uploaded(&owner, "report.pdf", PDF).await;
    let id: Uuid = file["id"].as_str().unwrap().parse().unwrap();
    let theirs = app.uploaded(&other, "theirs.pdf", PDF).await;
    let their_id: Uuid = theirs["id"].as_str().unwrap().parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    let path = format!("/files/{id}/content");
    let expired = signer().sign(id, owner.id, now - 1);
    let for_other_owner = signer().sign(id, other.id, now + 60);
    let other_file = signer().sign(their_id, other.id, now + 60);

    let cases = [
        ("no credentials", app.get(&path, None).await),
        ("bad signature", app.get(&format!("{path}?expires={}&sig=AAAA", now + 60), None).await),
        ("expired", app.get(&format!("{path}?expires={}&sig={expired}", now - 1), None).await),
        ("moved expiry", app.get(&format!("{path}?expires={}&sig={expired}", now + 60), None).await),
        (
            "signed for another owner",
            app.get(&format!("{path}?expires={}&sig={for_other_owner}", now + 60), None).await,
        ),
        ("another file's signature", app.get(&format!("{path}?expires={}&sig={other_file}", now + 60), None).await),
        ("another user's token", app.get(&path, Some(&other.token)).await),
        ("an expired token", app.get(&path, Some(&app.issuer.expired_token(owner.id))).await),
        ("unknown file", app.get(&format!("/files/{}/content", Uuid::new_v4()), Some(&owner.token)).await),
        ("not an id", app.get("/files/nope/content", Some(&owner.token)).await),
    ];

    for (case, response) in cases {
        assert_eq!(response.status(), 404, "{case}");
    }
    let signed =
        app.get(&format!("{path}?expires={}&sig={}", now + 60, signer().sign(id, owner.id, now + 60)), None).await;
    assert_eq!(signed.status(), 200, "the same URL shape with a good signature works");
}

#[tokio::test]
async fn a_malformed_id_signature_or_expiry_is_not_found_in_json_too() {
    let app = spawn_app().await;
    let owner = app.user();
    let file = app.uploaded(&owner, "report.pdf", PDF).await;
    let id: Uuid = file["id"].as_str().unwrap().parse().unwrap();
    let path = format!("/files/{id}/content");
    let later = chrono::Utc::now().timestamp() + 60;
    let sig = signer().sign(id, owner.id, later);

    let cases = [
        ("an expiry that is no number", format!("{path}?expires=soon&sig={sig}")),
        ("an expiry past i64", format!("{path}?expires=99999999999999999999&sig={sig}")),
        ("a repeated expiry", format!("{path}?expires={later}&expires={later}&sig={sig}")),
        ("a repeated signature", format!("{path}?expires={later}&sig={sig}&sig={sig}")),
        ("a signature that is not UTF-8", format!("{path}?expires={later}&sig=%FF%FE")),
        ("a signature that is not base64", format!("{path}?expires={later}&sig=%%%")),
        ("an id that is not UTF-8", "/files/%FF%FE/content".to_owned()),
        ("an over-long id", format!("/files/{}/content", "a".repeat(10_000))),
    ];

    for (case, url) in cases {
        let response = app.get(&url, None).await;
        assert_eq!(response.status(), 404, "{case}");
        let body: serde_json::Value = response.json().await.unwrap_or_else(|_| panic!("{case}: a JSON body"));
        assert_eq!(body, serde_json::json!({ "error": "not found" }), "{case}");
    }
}

/// A bearer token that cannot be checked (auth's keys unreachable) is a
/// retryable 503, not "this file does not exist"; a signed URL needs no token
/// check and is still served.
#[tokio::test]
async fn a_token_that_cannot_be_checked_is_503_while_a_signed_url_is_still_served() {
    let issuer = kit::testing::TestIssuer::start().await;
    let issuer_addr: std::net::SocketAddr =
        issuer.jwks_url.trim_start_matches("http://").split('/').next().unwrap().parse().unwrap();
    let gate = kit::testing::TcpGate::start(issuer_addr, false).await;
    let app = crate::helpers::spawn_app_with(|env| {
        env.set("JWKS_URL", format!("http://127.0.0.1:{}/.well-known/jwks.json", gate.port))
    })
    .await;
    let owner = Uuid::new_v4();
    let (id, key) = (Uuid::new_v4(), files::storage::Storage::new_key());
    let mut blob = app.repository.storage().writer(&key).await.unwrap();
    blob.write(axum::body::Bytes::from_static(PDF)).await.unwrap();
    blob.finish().await.unwrap();
    sqlx::query(
        "INSERT INTO files.files (id, owner_id, filename, content_type, size, sha256, storage_key)
         VALUES ($1, $2, 'report.pdf', 'application/pdf', $3, $4, $5)",
    )
    .bind(id)
    .bind(owner)
    .bind(PDF.len() as i64)
    .bind(crate::helpers::sha256_hex(PDF))
    .bind(&key)
    .execute(&app.pool)
    .await
    .unwrap();
    let path = format!("/files/{id}/content");

    let response = app.get(&path, Some(&issuer.token(owner))).await;

    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some(), "{:?}", response.headers());
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().is_some_and(|e| e.contains("retry")), "{body}");
    let expires = chrono::Utc::now().timestamp() + 60;
    let signed = format!("{path}?expires={expires}&sig={}", signer().sign(id, owner, expires));
    let response = app.get(&signed, Some(&issuer.token(owner))).await;
    assert_eq!(response.status(), 200, "a valid signature is enough");
    assert_eq!(response.bytes().await.unwrap().as_ref(), PDF);
}
