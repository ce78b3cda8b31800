//! A user's whole life through the router, with every real service: register,
//! log in, write tasks, upload a file, read it all back in one query, download
//! the file, delete the account, and watch the cascade remove everything.

use serde_json::{Value, json};

use crate::helpers::spawn_stack;

async fn count(database_url: &str, query: &'static str) -> i64 {
    let pool = sqlx::PgPool::connect(database_url).await.expect("connect to the subgraph's database");
    let n: i64 = sqlx::query_scalar(query).fetch_one(&pool).await.expect("count");
    pool.close().await;
    n
}

fn files_in(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().map(|e| if e.path().is_dir() { files_in(&e.path()) } else { 1 }).sum()
}

#[tokio::test]
async fn register_work_upload_read_download_and_leave_without_a_trace() {
    let (auth, tasks, files, router) = spawn_stack(&[]).await;
    let (email, password) = ("journey@example.com", "a long journey 1");
    let credentials = json!({ "e": email, "p": password });

    let registered = router
        .graphql(
            None,
            "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { accessToken } }",
            credentials.clone(),
        )
        .await;
    assert!(registered["data"]["register"]["accessToken"].is_string(), "{registered}");
    let logged_in = router
        .graphql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
            credentials,
        )
        .await;
    let token = logged_in["data"]["login"]["accessToken"].as_str().unwrap_or_else(|| panic!("{logged_in}")).to_owned();

    for title in ["plan", "build", "ship"] {
        let created = router
            .graphql(
                Some(&token),
                "mutation($t: String!) { createTask(input: { title: $t }) { id } }",
                json!({ "t": title }),
            )
            .await;
        assert!(created["data"]["createTask"]["id"].is_string(), "{created}");
    }
    let content = b"the journey's only file";
    let uploaded: Value = router
        .upload(&token, "mutation($file: Upload!) { uploadFile(file: $file) { id } }", "journey.txt", content)
        .await
        .json()
        .await
        .unwrap();
    assert!(uploaded["data"]["uploadFile"]["id"].is_string(), "{uploaded}");

    let me = router
        .graphql(
            Some(&token),
            "{ me { email tasks(orderBy: { field: CREATED_AT, direction: ASC }) { totalCount edges { node { title } } } \
               files { edges { node { filename downloadUrl } } } } }",
            json!({}),
        )
        .await;
    let me = &me["data"]["me"];
    assert_eq!(me["email"], email, "{me}");
    assert_eq!(me["tasks"]["totalCount"], 3);
    let titles: Vec<&str> =
        me["tasks"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["plan", "build", "ship"]);
    let file = &me["files"]["edges"][0]["node"];
    assert_eq!(file["filename"], "journey.txt");
    let download = router.http.get(router.url(file["downloadUrl"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.unwrap().as_ref(), content);

    let storage = files.storage_dir().expect("local storage");
    assert_eq!(files_in(storage), 1);
    kit::testing::wait_for_consumer(tasks.queue.as_deref().unwrap()).await;
    kit::testing::wait_for_consumer(files.queue.as_deref().unwrap()).await;
    let deleted = router
        .graphql(Some(&token), "mutation($p: String!) { deleteAccount(password: $p) }", json!({ "p": password }))
        .await;
    assert_eq!(deleted["data"]["deleteAccount"], true, "{deleted}");

    let (tasks_db, files_db) = (tasks.database_url(), files.database_url());
    kit::testing::eventually("the tasks, file rows and blobs to be gone", || {
        let (tasks_db, files_db) = (&tasks_db, &files_db);
        async move {
            count(tasks_db, "SELECT count(*) FROM tasks.tasks").await == 0
                && count(files_db, "SELECT count(*) FROM files.files").await == 0
                && files_in(storage) == 0
        }
    })
    .await;
    assert_eq!(count(&auth.database_url(), "SELECT count(*) FROM auth.users").await, 0);
}
