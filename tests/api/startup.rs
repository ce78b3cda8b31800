use std::process::Command;

use taskgraph::{Monolith, Settings, StartError};

fn unreachable_postgres(password: &str) -> String {
    // Port 1 (tcpmux) is closed on any machine that runs these tests.
    format!("postgres://postgres{password}@127.0.0.1:1/taskgraph")
}

#[tokio::test]
async fn without_postgres_the_build_fails_with_one_line_on_how_to_start_one() {
    let vars = [("DATABASE_URL".to_owned(), unreachable_postgres(""))];
    let settings = Settings::from_vars(vars).expect("valid settings");

    let error = Monolith::build(settings).await.err().expect("no Postgres, no start");

    assert!(matches!(error, StartError::PostgresUnreachable { .. }), "{error:?}");
    let line = error.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(line.contains("cannot reach PostgreSQL at postgres://postgres@127.0.0.1:1/taskgraph"), "{line}");
    assert!(line.contains("docker run") && line.contains("DATABASE_URL"), "{line}");
}

#[test]
fn without_postgres_the_binary_exits_non_zero_with_one_line_and_no_secret() {
    let output = Command::new(env!("CARGO_BIN_EXE_taskgraph"))
        .env("DATABASE_URL", unreachable_postgres(":hunter2"))
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the binary runs");

    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("taskgraph: cannot reach PostgreSQL at postgres://postgres:***@127.0.0.1:1/"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2") && !stderr.contains("panicked"), "{stderr}");
}

// The binary is run synchronously: the service under test needs threads of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_checks_the_health_of_a_running_process_and_has_no_queues_in_process() {
    let monolith = crate::helpers::spawn_monolith(crate::helpers::Mode::InProcess).await;
    let taskgraph = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_taskgraph"))
            .args(args)
            .env_clear()
            .env("PORT", monolith.ports.router.to_string())
            .env("RABBITMQ_URL", "none")
            .output()
            .expect("the binary runs")
    };

    let ready = taskgraph(&["healthcheck"]);
    let events = taskgraph(&["events", "replay-dead-letters"]);

    assert!(ready.status.success(), "{}", String::from_utf8_lossy(&ready.stderr));
    assert!(String::from_utf8_lossy(&ready.stdout).contains(r#""service":"router""#));
    assert_eq!(events.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&events.stderr).contains("in-process event bus has no queues"));
}
