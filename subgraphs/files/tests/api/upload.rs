use serde_json::json;

use crate::helpers::{PDF, PNG, Part, error_code, part, sha256_hex, spawn_app, spawn_app_with};

#[tokio::test]
async fn one_file_is_stored_with_its_hash_size_and_sniffed_type() {
    let app = spawn_app().await;
    let user = app.user();

    let response = app.upload(&user, &[Part { filename: "photo.png", content: PNG, content_type: "text/plain" }]).await;

    let file = &response["data"]["uploadFile"];
    assert_eq!(file["filename"], "photo.png", "{response}");
    assert_eq!(file["contentType"], "image/png", "the client's text/plain is not believed");
    assert_eq!(file["size"], PNG.len());
    assert_eq!(file["sha256"], sha256_hex(PNG));
    assert_eq!(file["owner"]["id"], user.id.to_string());
    assert!(
        file["downloadUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("/files/{}/content?expires=", file["id"].as_str().unwrap()))
    );
    assert_eq!(app.blobs().len(), 1);
    assert_eq!(app.file_rows().await, 1);
}

#[tokio::test]
async fn several_files_in_one_request() {
    let app = spawn_app().await;
    let user = app.user();

    let response =
        app.upload(&user, &[part("a.pdf", PDF), part("b.txt", b"hello\n"), part("c.csv", b"a,b\n1,2\n")]).await;

    let files = response["data"]["uploadFiles"].as_array().unwrap_or_else(|| panic!("{response}"));
    let types: Vec<&str> = files.iter().map(|f| f["contentType"].as_str().unwrap()).collect();
    assert_eq!(types, ["application/pdf", "text/plain", "text/csv"]);
    assert_eq!(app.blobs().len(), 3);
}

#[tokio::test]
async fn an_empty_file_is_an_empty_text_file() {
    let app = spawn_app().await;
    let user = app.user();

    let file = app.uploaded(&user, "empty.txt", b"").await;

    assert_eq!(file["size"], 0);
    assert_eq!(file["contentType"], "text/plain");
    assert_eq!(file["sha256"], sha256_hex(b""));
}

#[tokio::test]
async fn the_size_limit_is_exact_and_over_it_nothing_stays() {
    let app = spawn_app_with(|env| env.set("UPLOAD_MAX_FILE_BYTES", "4096")).await;
    let user = app.user();
    let at_limit = vec![b'a'; 4096];
    let over = vec![b'a'; 4097];

    let accepted = app.uploaded(&user, "at-limit.txt", &at_limit).await;
    let response = app.post_files(Some(&user.token), &[part("over.txt", &over)], false).await;

    assert_eq!(accepted["size"], 4096);
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "PAYLOAD_TOO_LARGE", "{body}");
    assert_eq!(app.blobs().len(), 1, "only the accepted file is stored");
    assert_eq!(app.file_rows().await, 1);
}

#[tokio::test]
async fn an_oversized_file_after_a_good_one_takes_both_down() {
    let app = spawn_app_with(|env| env.set("UPLOAD_MAX_FILE_BYTES", "4096")).await;
    let user = app.user();
    let over = vec![b'a'; 5000];

    let response = app.post_files(Some(&user.token), &[part("ok.pdf", PDF), part("big.txt", &over)], true).await;

    assert_eq!(response.status(), 413);
    assert!(app.blobs().is_empty(), "the first file's blob was removed: {:?}", app.blobs());
    assert_eq!(app.file_rows().await, 0);
}

#[tokio::test]
async fn too_many_files_are_refused_before_any_is_read() {
    let app = spawn_app_with(|env| env.set("UPLOAD_MAX_FILES", "2")).await;
    let user = app.user();

    let response =
        app.post_files(Some(&user.token), &[part("a.txt", b"a"), part("b.txt", b"b"), part("c.txt", b"c")], true).await;

    assert_eq!(response.status(), 413);
    assert!(app.blobs().is_empty());
}

#[tokio::test]
async fn a_disallowed_type_is_refused_whatever_the_client_claims() {
    let app = spawn_app().await;
    let user = app.user();
    let exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0";

    let response =
        app.upload(&user, &[Part { filename: "invoice.pdf", content: exe, content_type: "application/pdf" }]).await;

    assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
    assert_eq!(response["errors"][0]["extensions"]["field"], "file");
    assert!(app.blobs().is_empty());
    assert_eq!(app.file_rows().await, 0);
}

#[tokio::test]
async fn one_refused_file_refuses_the_whole_batch() {
    let app = spawn_app().await;
    let user = app.user();

    let response = app.upload(&user, &[part("ok.png", PNG), part("bad.bin", b"\0\x01\x02\x03binary")]).await;

    assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
    assert!(app.blobs().is_empty(), "the accepted file's blob went too: {:?}", app.blobs());
    assert_eq!(app.file_rows().await, 0);
}

#[tokio::test]
async fn path_traversal_names_keep_only_their_last_segment() {
    let app = spawn_app().await;
    let user = app.user();

    let file = app.uploaded(&user, "../../etc/passwd.txt", b"root:x:0:0\n").await;
    let dots = app.upload(&user, &[part("../..", b"x")]).await;

    assert_eq!(file["filename"], "passwd.txt");
    assert_eq!(error_code(&dots), "BAD_USER_INPUT", "{dots}");
    let names = app.blobs();
    assert_eq!(names.len(), 1);
    assert!(!names[0].contains("passwd"), "storage keys are random, never the name: {names:?}");
}

#[tokio::test]
async fn unicode_names_are_nfc_and_survive_the_round_trip() {
    let app = spawn_app().await;
    let user = app.user();
    let decomposed = "re\u{301}sume\u{301} 日本.txt";

    let file = app.uploaded(&user, decomposed, b"text").await;
    let download = app.get(file["downloadUrl"].as_str().unwrap(), None).await;

    assert_eq!(file["filename"], "résumé 日本.txt");
    let disposition = download.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.ends_with("filename*=UTF-8''r%C3%A9sum%C3%A9%20%E6%97%A5%E6%9C%AC.txt"), "{disposition}");
}

#[tokio::test]
async fn anonymous_uploads_are_refused_and_store_nothing() {
    let app = spawn_app().await;

    let response = app.post_files(None, &[part("a.txt", b"hello")], false).await;

    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert!(app.blobs().is_empty());
}

#[tokio::test]
async fn one_part_cannot_become_two_files_and_a_plain_string_is_not_a_file() {
    let app = spawn_app().await;
    let user = app.user();
    let operations = json!({ "query": crate::helpers::UPLOAD_FILES, "variables": { "files": [null, null] } });
    let map = json!({ "0": ["variables.files.0", "variables.files.1"] });

    let twice = app.post_multipart(Some(&user.token), &operations, &map, &[part("a.txt", b"a")]).await;
    let forged =
        app.graphql(Some(&user.token), crate::helpers::UPLOAD_FILE, json!({ "file": "#files-upload:0" })).await;

    let twice: serde_json::Value = twice.json().await.unwrap();
    assert_eq!(error_code(&twice), "BAD_USER_INPUT", "{twice}");
    assert_eq!(error_code(&forged), "BAD_USER_INPUT", "{forged}");
    assert!(app.blobs().is_empty());
}

#[tokio::test]
async fn a_request_without_files_keeps_the_small_body_limit() {
    let app = spawn_app_with(|env| env.set("BODY_LIMIT_BYTES", "2048")).await;
    let user = app.user();
    let padding = " ".repeat(4096);

    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&user.token)
        .json(&json!({ "query": format!("{{ files {{ totalCount }} }}{padding}") }))
        .send()
        .await
        .unwrap();
    let small = app.graphql(Some(&user.token), "{ files { totalCount } }", json!({})).await;

    assert_eq!(response.status(), 413);
    assert_eq!(small["data"]["files"]["totalCount"], 0, "{small}");
}

#[tokio::test]
async fn a_client_that_goes_away_mid_file_leaves_nothing_behind() {
    let app = spawn_app().await;
    let user = app.user();
    let (content_type, body) = crate::helpers::multipart_body(
        &json!({ "query": crate::helpers::UPLOAD_FILE, "variables": { "file": null } }),
        &json!({ "0": ["variables.file"] }),
        &[part("big.txt", &vec![b'a'; 3 << 20])],
    );
    // Send most of the file, then fail the body: the connection is cut mid-part.
    let cut = body.len() - 1024;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body[..cut]
        .chunks(64 << 10)
        .map(|c| Ok(c.to_vec()))
        .chain(std::iter::once(Err(std::io::Error::other("client gone"))))
        .collect();

    let sent = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&user.token)
        .header("content-type", content_type)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;

    assert!(sent.is_err() || !sent.unwrap().status().is_success());
    kit::testing::eventually("the partial blob to go", || async { app.blobs().is_empty() }).await;
    assert_eq!(app.file_rows().await, 0);
}

#[tokio::test]
async fn a_filename_with_control_characters_refuses_the_file() {
    let app = spawn_app().await;
    let user = app.user();

    // The control characters a part header can carry (multer refuses the others).
    for name in ["tab\there.txt", "c1\u{85}.txt", "csi\u{9b}2J.txt"] {
        let response = app.upload(&user, &[part(name, b"hello")]).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{name:?}: {response}");
        assert_eq!(response["errors"][0]["extensions"]["field"], "file", "{name:?}: {response}");
        assert!(response["errors"][0]["message"].as_str().unwrap().contains("control characters"), "{response}");
    }
    let bidi = app.uploaded(&user, "evil\u{202e}fdp.txt", b"hello").await;

    assert_eq!(bidi["filename"], "evilfdp.txt", "bidi controls are still removed");
    assert_eq!(app.blobs().len(), 1, "nothing of the refused files was stored");
    assert_eq!(app.file_rows().await, 1);
}

#[tokio::test]
async fn unreadable_bodies_are_request_errors_in_our_words() {
    let app = spawn_app().await;
    let user = app.user();
    let mut bodies = kit::testing::unreadable_graphql_bodies();
    bodies.push((
        "`operations` that is not JSON",
        "multipart/form-data; boundary=XyZ".into(),
        b"--XyZ\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{nope\r\n--XyZ--\r\n".to_vec(),
    ));

    for (what, content_type, body) in bodies {
        let response = app
            .client
            .post(format!("{}/graphql", app.address))
            .bearer_auth(&user.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        kit::testing::assert_request_error_in_our_words(what, response, 400).await;
    }
    assert!(app.blobs().is_empty());
}
