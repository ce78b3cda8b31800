//! `router healthcheck`: what compose runs in the router's image, which has no curl.

use std::process::{Command, Output};

use crate::helpers::{repo_path, spawn_auth, spawn_router};

fn router_healthcheck(probe: &str, port: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_router"))
        .args(["healthcheck", probe])
        .env_clear()
        .env("SUBGRAPH_SHARED_SECRET", kit::testing::ROUTER_SECRET)
        .env("PORT", port)
        .env("SUPERGRAPH_PATH", repo_path("schema/supergraph.graphql"))
        .output()
        .expect("the router binary runs")
}

// The binary is run synchronously: the service under test needs threads of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_passes_degraded_while_a_subgraph_is_missing_and_fails_with_no_router() {
    let auth = spawn_auth().await;
    // Only auth is up: tasks and files (the supergraph's URLs) answer nothing.
    let router = spawn_router(
        repo_path("schema/supergraph.graphql"),
        &[
            ("SUBGRAPH_AUTH_URL", format!("{}/graphql", auth.running.address)),
            ("SUBGRAPH_TASKS_URL", "http://127.0.0.1:1/graphql".to_owned()),
            ("SUBGRAPH_FILES_URL", "http://127.0.0.1:1/graphql".to_owned()),
        ],
    )
    .await;
    let port = router.running.address.rsplit(':').next().unwrap().to_owned();

    let live = router_healthcheck("live", &port);
    let ready = router_healthcheck("ready", &port);

    assert!(live.status.success(), "{}", String::from_utf8_lossy(&live.stderr));
    // The router serves what it can: one subgraph down keeps it in rotation.
    assert!(ready.status.success(), "{}", String::from_utf8_lossy(&ready.stderr));
    let said = String::from_utf8_lossy(&ready.stdout);
    assert!(said.contains(r#""status":"degraded""#), "{said}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nobody = router_healthcheck("ready", &closed.to_string());
    assert_eq!(nobody.status.code(), Some(1), "{}", String::from_utf8_lossy(&nobody.stderr));
}
