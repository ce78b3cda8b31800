//! A 100 MB upload and download with the limit raised: the process's memory
//! stays flat. Its own test binary, so no other test shares the process while
//! its resident set is measured.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use futures::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};

use helpers::{UPLOAD_FILE, spawn_app_with};

const SIZE: usize = 100 << 20;
const CHUNK: usize = 64 << 10;
const MAX_GROWTH: u64 = 32 << 20;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).expect("a number of kB") * 1024
}

/// Samples the resident set every few milliseconds until stopped; returns the peak.
fn sample_peak() -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let peak = Arc::new(AtomicU64::new(0));
    let handle = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            peak.fetch_max(rss_bytes(), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        }
        peak.load(Ordering::Relaxed)
    });
    (stop, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_upload_and_download_keep_memory_flat() {
    let app = spawn_app_with(|env| {
        env.set("UPLOAD_MAX_FILE_BYTES", (SIZE + 1).to_string());
        env.set("REQUEST_TIMEOUT", "300s");
    })
    .await;
    let user = app.user();
    // Warm up the connection pools and lazy allocations first.
    app.uploaded(&user, "warm-up.txt", b"warm").await;
    let chunk = Bytes::from(b"0123456789abcdef".repeat(CHUNK / 16));
    let mut expected = Sha256::new();
    for _ in 0..SIZE / CHUNK {
        expected.update(&chunk);
    }
    let expected = format!("{:x}", expected.finalize());

    let boundary = "----taskgraph-memory-test";
    let operations = json!({ "query": UPLOAD_FILE, "variables": { "file": null } });
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\":[\"variables.file\"]}}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"big.txt\"\r\n\
         Content-Type: text/plain\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let body = futures::stream::iter(
        std::iter::once(Bytes::from(head))
            .chain(std::iter::repeat_n(chunk.clone(), SIZE / CHUNK))
            .chain(std::iter::once(Bytes::from(tail))),
    )
    .map(Ok::<_, std::io::Error>);

    let baseline = rss_bytes();
    let (stop, sampler) = sample_peak();
    let response: serde_json::Value = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&user.token)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let file = &response["data"]["uploadFile"];
    assert_eq!(file["size"], SIZE, "{response}");
    assert_eq!(file["sha256"], expected.as_str());

    let download = app.get(&format!("/files/{}/content", file["id"].as_str().unwrap()), Some(&user.token)).await;
    assert_eq!(download.status(), 200);
    let mut stream = download.bytes_stream();
    let (mut hasher, mut received) = (Sha256::new(), 0usize);
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.expect("body");
        received += bytes.len();
        hasher.update(&bytes);
    }
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");

    assert_eq!(received, SIZE);
    assert_eq!(format!("{:x}", hasher.finalize()), expected);
    let growth = peak.saturating_sub(baseline);
    eprintln!("RSS baseline {} MiB, peak {} MiB, growth {} MiB", baseline >> 20, peak >> 20, growth >> 20);
    assert!(growth < MAX_GROWTH, "RSS grew by {} MiB during a 100 MB transfer", growth >> 20);
}
