//! The `tasks` binary's operator commands against a running service and the
//! real RabbitMQ: `healthcheck` (what compose runs in an image without curl)
//! and `events ...` (the dead-letter replay).

use std::process::{Command, Output};

use kit::testing::{metric, queue_depth};

use crate::cascade::Broker;
use crate::helpers::{TestApp, amqp_url, spawn_app, wait_for};

/// Runs the built `tasks` binary with only `vars` and the router secret every
/// configuration needs set (nothing leaks in from the test's environment).
fn tasks(args: &[&str], vars: &[(&str, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tasks"))
        .args(args)
        .env_clear()
        .env("SUBGRAPH_SHARED_SECRET", kit::testing::ROUTER_SECRET)
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("the tasks binary runs")
}

fn port_of(app: &TestApp) -> String {
    app.address.rsplit(':').next().expect("address with a port").to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// The binary is run synchronously: the service under test needs threads of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_passes_against_the_running_service_and_fails_without_one() {
    let app = spawn_app().await;
    // Ready means every check up, the event consumer's broker connection included.
    kit::testing::wait_for_consumer(&app.queue).await;
    let at_app = [("HOST", "0.0.0.0".to_owned()), ("PORT", port_of(&app))];

    let ready = tasks(&["healthcheck"], &at_app);
    let live = tasks(&["healthcheck", "live"], &at_app);

    assert!(ready.status.success(), "{} {}", text(&ready.stdout), text(&ready.stderr));
    assert!(text(&ready.stdout).contains(r#""status":"ready""#), "{}", text(&ready.stdout));
    assert!(live.status.success() && text(&live.stdout).contains(r#""status":"live""#), "{}", text(&live.stdout));

    drop(app);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nobody = tasks(&["healthcheck"], &[("HOST", "127.0.0.1".to_owned()), ("PORT", closed.to_string())]);
    assert_eq!(nobody.status.code(), Some(1), "{}", text(&nobody.stderr));
    assert!(text(&nobody.stderr).contains("unhealthy: cannot reach"), "{}", text(&nobody.stderr));
}

#[tokio::test]
async fn healthcheck_refuses_an_unknown_probe_and_a_broken_configuration() {
    let unknown = tasks(&["healthcheck", "startup"], &[]);
    let broken = tasks(&["healthcheck"], &[("PORT", "eighty".to_owned())]);

    assert_eq!(unknown.status.code(), Some(2));
    assert_eq!(broken.status.code(), Some(2));
    assert!(text(&broken.stderr).contains("configuration error: PORT"), "{}", text(&broken.stderr));
}

#[tokio::test]
async fn events_replay_dead_letters_puts_them_back_before_the_consumer() {
    let app = spawn_app().await;
    let broker = Broker::for_app(&app).await;
    let dead = format!("{}.dead", app.queue);
    let dead_lettered = || metric("events_dead_lettered_total", &[("queue", &app.queue)]);
    broker.publish(b"{ not json").await;
    wait_for("the poison dead-lettered", || async { (queue_depth(&dead).await == Some(1)).then_some(()) }).await;
    let broker_vars = [
        ("RABBITMQ_URL", amqp_url()),
        ("EVENTS_EXCHANGE", app.exchange.clone()),
        ("USER_DELETED_QUEUE", app.queue.clone()),
    ];

    let replay = tasks(&["events", "replay-dead-letters"], &broker_vars);

    assert!(replay.status.success(), "{}", text(&replay.stderr));
    let said = text(&replay.stdout);
    assert!(said.contains(&format!("moved 1 dead letters from {dead} back to {}", app.queue)), "{said}");
    // Still poison: the consumer read it again from its work queue and dead-lettered it anew.
    wait_for("the replayed poison dead-lettered again", || async { (dead_lettered() == 2.0).then_some(()) }).await;
    wait_for("it is back in the dead letters", || async { (queue_depth(&dead).await == Some(1)).then_some(()) }).await;

    let recreate = tasks(&["events", "recreate-queue"], &broker_vars);
    assert!(recreate.status.success(), "{}", text(&recreate.stderr));
    assert!(text(&recreate.stdout).contains("has this version's arguments"), "{}", text(&recreate.stdout));
}

#[test]
fn events_needs_a_known_command() {
    let output = tasks(&["events", "replay"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("usage: tasks events replay-dead-letters | recreate-queue"));
}
