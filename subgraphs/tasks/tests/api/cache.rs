//! The Redis cache in front of the list and single-task resolvers.

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, titles};

const TASK: &str = "query($id: ID!) { task(id: $id) { id title } }";

// Seeds 4 and 5: from the database when the cache is empty, then from the cache.
#[tokio::test]
async fn a_repeated_read_is_served_from_redis_without_sql() {
    let app = spawn_app().await;
    let user = app.user();
    let task = app.create_task(&user, json!({ "title": "cached" })).await;

    let before = app.statements();
    let first = app.tasks_page(&user, json!({ "first": 5 })).await;
    assert_eq!(app.statements(), before + 1, "a miss reads Postgres once");
    let second = app.tasks_page(&user, json!({ "first": 5 })).await;
    assert_eq!(second, first);
    assert_eq!(app.statements(), before + 1, "a hit does not touch Postgres");

    let other_args = app.tasks_page(&user, json!({ "first": 6 })).await;
    assert_eq!(titles(&other_args), ["cached"]);
    assert_eq!(app.statements(), before + 2, "other arguments are another entry");

    let one = app.graphql(Some(&user.token), TASK, json!({ "id": task["id"] })).await;
    let again = app.graphql(Some(&user.token), TASK, json!({ "id": task["id"] })).await;
    assert_eq!(one, again);
    assert_eq!(app.statements(), before + 3, "the single-task read is cached too");
}

#[tokio::test]
async fn whole_answers_to_repeated_queries_are_kept_but_never_errors_mutations_or_anonymous_ones() {
    let app = spawn_app().await;
    let user = app.user();
    app.create_task(&user, json!({ "title": "a" })).await;
    assert_eq!(app.cached_responses(&user), 0, "a mutation's answer is never kept");

    let query = "{ tasks(first: 3) { totalCount edges { node { title } } } }";
    let first = app.graphql(Some(&user.token), query, json!({})).await;
    assert_eq!(app.cached_responses(&user), 1, "{first}");
    let before = app.statements();
    assert_eq!(app.graphql(Some(&user.token), query, json!({})).await, first);
    assert_eq!(app.statements(), before, "answered from the cache");

    let failed = app.graphql(Some(&user.token), "{ task(id: \"nope\") { id } }", json!({})).await;
    assert_eq!(failed["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let anonymous = app.graphql(None, query, json!({})).await;
    assert_eq!(anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(app.cached_responses(&user), 1, "answers with errors are not kept");

    app.create_task(&user, json!({ "title": "b" })).await;
    let after = app.graphql(Some(&user.token), query, json!({})).await;
    assert_eq!(after["data"]["tasks"]["totalCount"], 2, "a write makes the kept answer stale: {after}");
}

#[tokio::test]
async fn every_write_is_visible_to_the_writers_next_read() {
    let app = spawn_app().await;
    let user = app.user();
    let task = app.create_task(&user, json!({ "title": "v1" })).await;
    let read = |_: ()| app.tasks_page(&user, json!({}));
    assert_eq!(titles(&read(()).await), ["v1"]);
    assert_eq!(app.graphql(Some(&user.token), TASK, json!({ "id": task["id"] })).await["data"]["task"]["title"], "v1");

    // create
    app.create_task(&user, json!({ "title": "v2" })).await;
    assert_eq!(titles(&read(()).await), ["v2", "v1"], "after create");

    // update
    let update = "mutation($id: ID!) { updateTask(id: $id, input: { title: \"v1 edited\" }) { id } }";
    app.graphql(Some(&user.token), update, json!({ "id": task["id"] })).await;
    assert_eq!(titles(&read(()).await), ["v2", "v1 edited"], "after update");
    let single = app.graphql(Some(&user.token), TASK, json!({ "id": task["id"] })).await;
    assert_eq!(single["data"]["task"]["title"], "v1 edited", "single read after update");

    // delete
    app.graphql(Some(&user.token), "mutation($id: ID!) { deleteTask(id: $id) }", json!({ "id": task["id"] })).await;
    assert_eq!(titles(&read(()).await), ["v2"], "after delete");
    let gone = app.graphql(Some(&user.token), TASK, json!({ "id": task["id"] })).await;
    assert_eq!(gone["errors"][0]["extensions"]["code"], "NOT_FOUND", "single read after delete: {gone}");
}

#[tokio::test]
async fn one_users_write_leaves_another_users_cache_alone() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user(), app.user());
    app.create_task(&bob, json!({ "title": "bob's" })).await;
    app.tasks_page(&bob, json!({})).await;

    app.create_task(&alice, json!({ "title": "alice's" })).await;
    let before = app.statements();
    app.tasks_page(&bob, json!({})).await;
    assert_eq!(app.statements(), before, "bob's page is still cached");
}

#[tokio::test]
async fn with_redis_unreachable_requests_still_succeed_from_postgres() {
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://127.0.0.1:{}", dead.local_addr().unwrap().port());
    drop(dead);
    let app = spawn_app_with(|env| env.set("REDIS_URL", &url)).await;
    let user = app.user();

    let task = app.create_task(&user, json!({ "title": "no cache needed" })).await;
    for _ in 0..5 {
        assert_eq!(titles(&app.tasks_page(&user, json!({})).await), ["no cache needed"]);
    }
    let single = app
        .graphql(Some(&user.token), "query($id: ID!) { task(id: $id) { title } }", json!({ "id": task["id"] }))
        .await;
    assert_eq!(single["data"]["task"]["title"], "no cache needed", "{single}");
    // The user's reads skip Redis while the write's invalidation is pending; its retries fail too.
    assert_eq!(app.service.cache().pending_invalidations(), 1);
    kit::testing::eventually("repeated errors to rest the cache", || async { app.service.cache().cooling_down() })
        .await;

    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200, "Redis is optional");
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert!(body.to_string().contains("redis"), "{body}");
}

#[tokio::test]
async fn a_write_while_redis_is_cut_off_is_seen_by_the_next_read_once_redis_is_back() {
    let gate = kit::testing::TcpGate::start(kit::testing::redis_addr(), true).await;
    let app = spawn_app_with(|env| env.set("REDIS_URL", format!("redis://127.0.0.1:{}", gate.port))).await;
    let user = app.user();
    let page = json!({ "first": 50 });
    let redis_is_up = || async {
        let body: serde_json::Value = app.get("/health/ready").await.json().await.unwrap();
        body["checks"]["redis"]["status"] == "up"
    };
    let cache = app.service.cache();
    for round in 0..4 {
        kit::testing::eventually("the cache to trust Redis again", || async { !cache.recovering() }).await;
        let before = app.tasks_page(&user, page.clone()).await;
        let statements = app.statements();
        assert_eq!(app.tasks_page(&user, page.clone()).await, before);
        assert_eq!(app.statements(), statements, "round {round}: the page is cached");

        gate.close();
        let title = format!("written while Redis was away ({round})");
        app.create_task(&user, json!({ "title": title })).await;
        gate.open();
        kit::testing::eventually("Redis to be reachable again", redis_is_up).await;

        let after = app.tasks_page(&user, page.clone()).await;
        assert!(titles(&after).contains(&title), "round {round}: the write is seen: {after}");
        kit::testing::eventually("the invalidation to reach Redis", || async { cache.pending_invalidations() == 0 })
            .await;
        assert!(titles(&app.tasks_page(&user, page.clone()).await).contains(&title), "round {round}");
    }
}
