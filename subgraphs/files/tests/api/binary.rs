//! The `files` binary's operator commands against the running service's queues.

use std::process::Command;

use crate::helpers::spawn_app;

// The binary is run synchronously: the service under test needs threads of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_replay_dead_letters_and_healthcheck_reach_the_running_service() {
    let app = spawn_app().await;
    kit::testing::wait_for_consumer(&app.queue).await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let files = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_files"))
            .args(args)
            .env_clear()
            .env("SUBGRAPH_SHARED_SECRET", kit::testing::ROUTER_SECRET)
            .env("PORT", &port)
            .env("RABBITMQ_URL", kit::testing::amqp_url())
            .env("EVENTS_EXCHANGE", &app.exchange)
            .env("USER_DELETED_QUEUE", &app.queue)
            .output()
            .expect("the files binary runs")
    };

    let replay = files(&["events", "replay-dead-letters"]);
    let health = files(&["healthcheck", "live"]);

    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let said = String::from_utf8_lossy(&replay.stdout);
    assert!(said.contains(&format!("{}: moved 0 dead letters", app.queue)), "{said}");
    assert!(health.status.success(), "{}", String::from_utf8_lossy(&health.stderr));
}
