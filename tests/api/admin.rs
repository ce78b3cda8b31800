//! One admin listener for the whole process: `/metrics` of all four services.

use crate::helpers::{Mode, spawn_monolith};

#[tokio::test]
async fn one_admin_listener_serves_every_service_s_metrics_and_the_banner_names_it() {
    let monolith = spawn_monolith(Mode::InProcess).await;
    let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
    monolith.register(&email, "analytical1").await;
    let admin = monolith.admin_port.expect("the process has an admin listener");
    let ports = monolith.ports;

    let metrics = monolith.client.get(format!("http://127.0.0.1:{admin}/metrics")).send().await.unwrap();
    let public = monolith.client.get(format!("http://127.0.0.1:{}/metrics", ports.router)).send().await.unwrap();

    assert_eq!(metrics.status(), 200);
    let body = metrics.text().await.unwrap();
    for service in ["router", "auth"] {
        let series = format!("service=\"{service}\"");
        assert!(body.lines().any(|l| l.starts_with("http_request_duration_seconds") && l.contains(&series)), "{body}");
    }
    assert_eq!(public.status(), 404, "not on the router's public port");
    for subgraph in [ports.auth, ports.tasks, ports.files] {
        let url = format!("http://127.0.0.1:{subgraph}/metrics");
        assert_eq!(monolith.client.get(url).send().await.unwrap().status(), 404, "nor on a subgraph's");
    }
    let line = format!("metrics: http://127.0.0.1:{admin}/metrics");
    assert!(monolith.banner.contains(&line), "{}", monolith.banner);
}
