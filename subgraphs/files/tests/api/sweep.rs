use std::time::{Duration, SystemTime};

use crate::helpers::spawn_app;

const HOUR: Duration = Duration::from_secs(3600);

fn age(path: &std::path::Path, by: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - by).unwrap();
}

#[tokio::test]
async fn the_sweep_removes_old_blobs_without_rows_and_nothing_else() {
    let app = spawn_app().await;
    let user = app.user();
    app.uploaded(&user, "kept.txt", b"referenced").await;
    let referenced = app.storage_dir.join(&app.blobs()[0]);
    age(&referenced, 2 * HOUR);
    let old_orphan = app.storage_dir.join("0badc0ffee0000000000000000000001");
    std::fs::write(&old_orphan, b"a crashed upload").unwrap();
    age(&old_orphan, 2 * HOUR);
    let interrupted = app.storage_dir.join("0badc0ffee0000000000000000000003#1");
    std::fs::write(&interrupted, b"half an upload, then a crash").unwrap();
    age(&interrupted, 2 * HOUR);
    let recent_orphan = app.storage_dir.join("0badc0ffee0000000000000000000002");
    std::fs::write(&recent_orphan, b"an upload in flight").unwrap();

    let removed = app.repository.sweep_orphans(HOUR).await.unwrap();

    assert_eq!(removed, 2);
    assert!(!old_orphan.exists(), "the old orphan went");
    assert!(!interrupted.exists(), "so did an upload's staging file left by a crash");
    assert!(recent_orphan.exists(), "a blob younger than the grace period may still get its row");
    assert!(referenced.exists(), "a blob with a row stays, however old");
}
